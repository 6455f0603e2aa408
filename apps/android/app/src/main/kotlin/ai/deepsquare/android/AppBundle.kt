package ai.deepsquare.android

import ai.deepsquare.core.BundleMeta
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.EmbeddedBundle
import android.content.Context
import java.io.FileNotFoundException

/**
 * The bundle in the app's assets: model.tflite (required) and model.json (optional).
 *
 * The metadata inside the .tflite ("deepsquare_bundle", "labels.txt") is enough on its own: the
 * labels, input size and mean/std come from there. When assets/model.json is present it is read
 * too and must describe the same model (both files are copied from one bundle by install-bundle.sh).
 */
class AppBundle private constructor(val modelBytes: ByteArray, val meta: BundleMeta, val source: String) {
    companion object {
        const val MODEL = "model.tflite"
        const val SIDECAR = "model.json"

        fun load(context: Context): AppBundle {
            val assets = context.assets
            val bytes =
                try {
                    assets.open(MODEL).use { it.readBytes() }
                } catch (e: FileNotFoundException) {
                    throw DeepSquareError(
                        "assets/$MODEL is missing: run apps/android/install-bundle.sh BUNDLE, then rebuild the app",
                        e,
                    )
                }
            val embedded = EmbeddedBundle.read(bytes, "assets/$MODEL")
            val names = assets.list("")?.toSet() ?: emptySet()
            if (SIDECAR !in names) return AppBundle(bytes, embedded.meta, "metadata inside $MODEL")
            val sidecar = BundleMeta.parse(assets.open(SIDECAR).use { it.readBytes() }, "assets/$SIDECAR")
            val differing =
                listOf(
                    "arch" to (sidecar.arch == embedded.meta.arch),
                    "variant" to (sidecar.variant == embedded.meta.variant),
                    "classes" to (sidecar.classes == embedded.meta.classes),
                    "input_size" to (sidecar.inputSize == embedded.meta.inputSize),
                    "mean" to (sidecar.mean == embedded.meta.mean),
                    "std" to (sidecar.std == embedded.meta.std),
                ).filter { !it.second }.map { it.first }
            if (differing.isNotEmpty()) {
                throw DeepSquareError(
                    "assets/$SIDECAR and the metadata inside assets/$MODEL disagree on " +
                        "${differing.joinToString(", ")}: copy both files from the same bundle (install-bundle.sh)",
                )
            }
            return AppBundle(bytes, sidecar, "$SIDECAR + metadata inside $MODEL")
        }
    }
}
