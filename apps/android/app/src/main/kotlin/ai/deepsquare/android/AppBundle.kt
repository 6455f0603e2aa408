package ai.deepsquare.android

import ai.deepsquare.core.BundleMeta
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.FormatEntry
import ai.deepsquare.core.Golden
import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import java.io.FileNotFoundException

/** golden.png's pixels (RGB, HWC) and golden.json, for the self-check. */
class GoldenImage(val golden: Golden, val rgb: ByteArray, val width: Int, val height: Int)

/**
 * The bundle in the app's assets (install-bundle.sh copies it there): model.json (required: labels, input size,
 * input kind), model.tflite, and golden.json + golden.png when model.json names them. Labels and sizes come from
 * model.json; the model file's own tensors are checked against it when it is compiled (Classifier).
 */
class AppBundle private constructor(val meta: BundleMeta, val entry: FormatEntry, val golden: GoldenImage?) {
    companion object {
        const val SIDECAR = "model.json"

        private fun bytes(context: Context, name: String): ByteArray =
            try {
                context.assets.open(name).use { it.readBytes() }
            } catch (e: FileNotFoundException) {
                throw DeepSquareError(
                    "assets/$name is missing: run apps/android/install-bundle.sh BUNDLE, then rebuild the app",
                    e,
                )
            }

        fun load(context: Context): AppBundle {
            val meta = BundleMeta.parse(bytes(context, SIDECAR), "assets/$SIDECAR")
            val entry = meta.format("tflite")
            context.assets.open(entry.file).close() // present, or the message above
            val goldenName = meta.golden ?: return AppBundle(meta, entry, null)
            val golden = Golden.parse(String(bytes(context, goldenName), Charsets.UTF_8), meta, "assets/$goldenName")
            val png = bytes(context, golden.image)
            val options = BitmapFactory.Options().apply {
                inPreferredConfig = Bitmap.Config.ARGB_8888
                inScaled = false // the pixels as stored: no density scaling
            }
            val bitmap = BitmapFactory.decodeByteArray(png, 0, png.size, options)
                ?: throw DeepSquareError("assets/${golden.image} is not a PNG Android can decode: install the bundle again")
            return AppBundle(meta, entry, GoldenImage(golden, Images.rgbBytes(bitmap), bitmap.width, bitmap.height))
        }
    }
}
