package ai.deepsquare.android

import ai.deepsquare.core.Classify
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.Prediction
import ai.deepsquare.core.ModelInput
import ai.deepsquare.core.SelfCheckResult
import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.net.Uri
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import com.google.android.material.switchmaterial.SwitchMaterial
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Camera preview + photo picker -> top-5 with probabilities. When the bundle loads (and whenever the accelerator
 * settings change) the golden self-check runs first; nothing is classified unless it passed. The model runs on a
 * background thread; model.json checks, the model input, the self-check and top-k are the core's (JVM-tested).
 */
class MainActivity : AppCompatActivity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var bundle: AppBundle? = null
    private var classifier: Classifier? = null
    private var check: SelfCheckResult? = null

    private lateinit var preview: PreviewView
    private lateinit var photo: ImageView
    private lateinit var status: TextView
    private lateinit var threads: EditText
    private lateinit var useGpu: SwitchMaterial
    private lateinit var predictions: LinearLayout

    private val pickPhoto =
        registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
            if (uri != null) classifyUri(uri)
        }

    private val cameraPermission =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            if (granted) startCamera() else status.setText(R.string.camera_denied)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        preview = findViewById(R.id.preview)
        photo = findViewById(R.id.photo)
        status = findViewById(R.id.status)
        threads = findViewById(R.id.threads)
        useGpu = findViewById(R.id.use_gpu)
        predictions = findViewById(R.id.predictions)
        val prefs = getSharedPreferences(Settings.PREFS, MODE_PRIVATE)
        threads.setText(prefs.getInt(Settings.THREADS, 4).toString())
        useGpu.isChecked = prefs.getBoolean(Settings.GPU, false)
        repeat(5) { layoutInflater.inflate(R.layout.item_prediction, predictions, true) }

        findViewById<Button>(R.id.pick_photo).setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        findViewById<Button>(R.id.classify_frame).setOnClickListener {
            photo.visibility = View.GONE
            val frame = preview.bitmap
            if (frame == null) status.text = getString(R.string.camera_denied) else classifyBitmap(frame)
        }
        findViewById<Button>(R.id.open_latency).setOnClickListener {
            saveSettings()
            startActivity(Intent(this, LatencyActivity::class.java))
        }

        val startSettings = currentSettings()
        worker.execute {
            val message =
                try {
                    describe(ready(startSettings))
                } catch (e: DeepSquareError) {
                    e.message
                }
            runOnUiThread { status.text = message }
        }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val useCase = Preview.Builder().build().also { it.setSurfaceProvider(preview.surfaceProvider) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, useCase)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun currentSettings(): RunSettings =
        RunSettings(threads = threads.text.toString().toIntOrNull() ?: 0, useGpu = useGpu.isChecked)

    private fun saveSettings() {
        val s = currentSettings()
        getSharedPreferences(Settings.PREFS, MODE_PRIVATE).edit()
            .putInt(Settings.THREADS, s.threads.coerceIn(1, 64))
            .putBoolean(Settings.GPU, s.useGpu)
            .apply()
    }

    private fun classifyUri(uri: Uri) {
        status.text = "…"
        worker.execute {
            try {
                val bitmap = Images.decodeUpright(contentResolver, uri)
                runOnUiThread {
                    photo.setImageBitmap(bitmap)
                    photo.visibility = View.VISIBLE
                }
                classifyOnWorker(bitmap)
            } catch (e: DeepSquareError) {
                runOnUiThread { status.text = e.message }
            }
        }
    }

    private fun classifyBitmap(bitmap: Bitmap) {
        worker.execute { classifyOnWorker(bitmap) }
    }

    /**
     * On the worker thread: the bundle, a classifier for [settings] and its self-check, made once and again when the
     * settings change. A failed self-check is an error: the app does not classify with a model it cannot trust.
     */
    private fun ready(settings: RunSettings): Classifier {
        val loaded = bundle ?: AppBundle.load(this).also { bundle = it }
        var model = classifier
        if (model == null || model.settings != settings) {
            model?.close()
            classifier = null
            model = Classifier.create(this, loaded, settings)
            classifier = model
            check = model.selfCheck(loaded)
        }
        val result = check
        if (result != null && !result.passed) throw DeepSquareError(result.message)
        return model
    }

    private fun describe(model: Classifier): String {
        val m = model.meta
        val golden = check?.message ?: "no golden file in this bundle: self-check not run"
        return "${m.arch} ${m.variant}, ${m.inputSize} px, ${m.classes.size} classes, ${model.entry.inputKind.json} input; " +
            "${model.ranOn}; ${model.shapes}; $golden"
    }

    /** On the worker thread: bitmap -> pixels at input size (platform resize) -> model input (core) -> LiteRT -> top-5. */
    private fun classifyOnWorker(bitmap: Bitmap) {
        val settings = runOnUiThreadBlocking { currentSettings() }
        try {
            val model = ready(settings)
            val rgb = Images.modelPixels(bitmap, model.meta.inputSize)
            val input = ModelInput.of(rgb, model.meta, model.entry)
            val start = System.nanoTime()
            val outputs = model.run(input)
            val ms = (System.nanoTime() - start) / 1e6
            val top = Classify.topK(outputs, model.entry, model.meta.classes, 5)
            val line =
                String.format(Locale.US, "%dx%d photo, %s, %.1f ms", bitmap.width, bitmap.height, model.ranOn, ms)
            runOnUiThread {
                show(top)
                status.text = line
            }
        } catch (e: DeepSquareError) {
            runOnUiThread { status.text = e.message }
        } catch (e: OutOfMemoryError) {
            runOnUiThread { status.text = "the photo is too large for this device's memory" }
        }
    }

    private fun <T> runOnUiThreadBlocking(block: () -> T): T {
        val latch = java.util.concurrent.CountDownLatch(1)
        var value: T? = null
        runOnUiThread {
            value = block()
            latch.countDown()
        }
        latch.await()
        @Suppress("UNCHECKED_CAST")
        return value as T
    }

    private fun show(top: List<Prediction>) {
        for (i in 0 until predictions.childCount) {
            val row = predictions.getChildAt(i)
            val p = top.getOrNull(i)
            row.visibility = if (p == null) View.GONE else View.VISIBLE
            if (p == null) continue
            row.findViewById<TextView>(R.id.label).text = p.label
            row.findViewById<TextView>(R.id.probability).text = String.format(Locale.US, "%.1f%%", p.probability * 100)
            row.findViewById<ProgressBar>(R.id.bar).progress = (p.probability * 1000).toInt()
        }
    }

    override fun onPause() {
        super.onPause()
        saveSettings()
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { classifier?.close() }
        worker.shutdown()
    }
}

object Settings {
    const val PREFS = "deepsquare"
    const val THREADS = "threads"
    const val GPU = "gpu"
}
