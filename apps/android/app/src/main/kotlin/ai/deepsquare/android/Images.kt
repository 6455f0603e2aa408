package ai.deepsquare.android

import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.ModelInput
import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.graphics.Matrix
import android.net.Uri
import android.os.Build
import androidx.exifinterface.media.ExifInterface
import java.io.IOException

/**
 * Photos -> upright bitmaps -> the model's pixels. As in Python (runtime/images.py) the EXIF orientation is applied
 * and the whole image is resized to input_size x input_size (no crop), here by the platform:
 * Bitmap.createScaledBitmap with filtering (bilinear). Pillow's BILINEAR, which `deepsquare predict` uses, widens its
 * filter when it shrinks (antialiasing) and Android's does not, and the JPEG decoders differ: the pixels, and so the
 * probabilities, can differ slightly from the desktop's for the same photo. The golden image needs no resize.
 */
object Images {
    fun decodeUpright(resolver: ContentResolver, uri: Uri): Bitmap {
        try {
            if (Build.VERSION.SDK_INT >= 28) {
                // ImageDecoder applies the EXIF orientation itself.
                return ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, _, _ ->
                    decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
                }
            }
            val options = BitmapFactory.Options().apply { inPreferredConfig = Bitmap.Config.ARGB_8888 }
            val bitmap =
                resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) }
                    ?: throw DeepSquareError("cannot decode $uri as an image")
            val orientation =
                resolver.openInputStream(uri)?.use {
                    ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
                } ?: ExifInterface.ORIENTATION_NORMAL
            return applyOrientation(bitmap, orientation)
        } catch (e: IOException) {
            throw DeepSquareError("cannot read the photo: ${e.message}", e)
        }
    }

    private fun applyOrientation(bitmap: Bitmap, orientation: Int): Bitmap {
        val m = Matrix()
        when (orientation) {
            ExifInterface.ORIENTATION_FLIP_HORIZONTAL -> m.setScale(-1f, 1f)
            ExifInterface.ORIENTATION_ROTATE_180 -> m.setRotate(180f)
            ExifInterface.ORIENTATION_FLIP_VERTICAL -> m.setScale(1f, -1f)
            ExifInterface.ORIENTATION_TRANSPOSE -> {
                m.setRotate(90f)
                m.postScale(-1f, 1f)
            }
            ExifInterface.ORIENTATION_ROTATE_90 -> m.setRotate(90f)
            ExifInterface.ORIENTATION_TRANSVERSE -> {
                m.setRotate(-90f)
                m.postScale(-1f, 1f)
            }
            ExifInterface.ORIENTATION_ROTATE_270 -> m.setRotate(-90f)
            else -> return bitmap
        }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }

    /** A bitmap's pixels as RGB bytes (HWC), alpha dropped; hardware bitmaps are copied first. */
    fun rgbBytes(bitmap: Bitmap): ByteArray {
        val software =
            if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
        val w = software.width
        val h = software.height
        val argb = IntArray(w * h)
        software.getPixels(argb, 0, w, 0, 0, w, h)
        return ModelInput.argbToRgb(argb, w, h)
    }

    /** The whole [bitmap] scaled to [size] x [size] with bilinear filtering, as RGB bytes: what a uint8 model takes. */
    fun modelPixels(bitmap: Bitmap, size: Int): ByteArray {
        val scaled = if (bitmap.width == size && bitmap.height == size) bitmap else Bitmap.createScaledBitmap(bitmap, size, size, true)
        return rgbBytes(scaled)
    }
}
