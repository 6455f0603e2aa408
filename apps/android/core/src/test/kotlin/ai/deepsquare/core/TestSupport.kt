package ai.deepsquare.core

import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.awt.image.BufferedImage
import java.io.File
import javax.imageio.ImageIO

/** Asserts [block] throws a DeepSquareError (nothing else) whose message contains every one of [parts]. */
fun expectError(vararg parts: String, block: () -> Unit): String {
    val message =
        try {
            block()
            throw AssertionError("expected a DeepSquareError mentioning ${parts.toList()}, nothing was thrown")
        } catch (e: DeepSquareError) {
            e.message.orEmpty()
        }
    for (part in parts) {
        if (!message.contains(part)) throw AssertionError("error message <$message> does not mention <$part>")
    }
    return message
}

/** A small, valid deepsquare-bundle/2 model.json (the fields `deepsquare export --input uint8` writes). */
object Fixtures {
    val CLASSES = (0..9).map { it.toString() }

    fun modelJson(): JsonObject =
        JsonParser.parseString(
            """
            {
              "schema": "deepsquare-bundle/2",
              "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
              "arch": "vanilla_cnn",
              "variant": "sp+ss",
              "classes": ${CLASSES.map { "\"$it\"" }},
              "input_size": 8,
              "mean": [0.5, 0.5, 0.5],
              "std": [0.25, 0.25, 0.25],
              "pixel_range": "0-1",
              "input": "uint8",
              "formats": {
                "tflite": {"file": "model.tflite", "layout": "NHWC", "input_name": "pixels", "output_name": "logits",
                           "precision": "fp32", "input_dtype": "uint8", "extra": {"outputs": "logits"}},
                "coreml": {"file": "model.mlpackage", "layout": "image", "input_name": "image",
                           "output_name": "classLabel", "precision": "fp32", "input_dtype": "image",
                           "extra": {"outputs": "probabilities"}}
              },
              "provenance": {"epoch": 1, "data": "digits"},
              "sha256": {"model.tflite": "${"ab".repeat(32)}"},
              "golden": "golden.json",
              "samples": "samples.json"
            }
            """,
        ).asJsonObject

    fun text(json: JsonObject): String = StrictJson.write(json)

    /** model.json with [change] applied to its tree. */
    fun edited(change: (JsonObject) -> Unit): String = text(modelJson().also(change))

    val meta: BundleMeta get() = BundleMeta.parse(text(modelJson()))
}

/** PNG files written and read with ImageIO (lossless): the JVM's stand-in for Android's BitmapFactory. */
object Png {
    fun write(file: File, rgb: ByteArray, width: Int, height: Int) {
        val image = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
        for (y in 0 until height) {
            for (x in 0 until width) {
                val i = (y * width + x) * 3
                val p = ((rgb[i].toInt() and 0xff) shl 16) or ((rgb[i + 1].toInt() and 0xff) shl 8) or (rgb[i + 2].toInt() and 0xff)
                image.setRGB(x, y, p)
            }
        }
        check(ImageIO.write(image, "png", file))
    }

    /** The PNG's pixels as RGB bytes (HWC), through the core's own ARGB -> RGB step. */
    fun read(file: File): Triple<ByteArray, Int, Int> {
        val image = ImageIO.read(file) ?: throw AssertionError("ImageIO cannot read $file")
        val argb = image.getRGB(0, 0, image.width, image.height, null, 0, image.width)
        return Triple(ModelInput.argbToRgb(argb, image.width, image.height), image.width, image.height)
    }
}
