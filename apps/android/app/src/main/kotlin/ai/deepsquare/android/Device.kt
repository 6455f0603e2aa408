package ai.deepsquare.android

import android.os.Build

object Device {
    /** For the record's "machine": e.g. "Google Pixel 8 (Android 15, arm64-v8a)". */
    fun describe(): String {
        val model =
            if (Build.MODEL.startsWith(Build.MANUFACTURER, ignoreCase = true)) {
                Build.MODEL
            } else {
                "${Build.MANUFACTURER} ${Build.MODEL}"
            }
        val abi = Build.SUPPORTED_ABIS.firstOrNull() ?: "unknown ABI"
        return "$model (Android ${Build.VERSION.RELEASE}, $abi)"
    }
}
