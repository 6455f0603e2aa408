package ai.deepsquare.android

import ai.deepsquare.core.BenchRecord
import ai.deepsquare.core.Benchmark
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.ModelInput
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import java.io.File
import java.util.Locale
import java.util.concurrent.Executors

/**
 * Times the loaded model: warm-up runs (not timed), then N timed runs; shows p50/p90 and appends a
 * "deepsquare-bench-record/1" row to records.json in the app's external files folder, so that
 *   adb pull /sdcard/Android/data/ai.deepsquare.android/files/records.json
 * gets it for `deepsquare bench --add-records records.json`.
 */
class LatencyActivity : AppCompatActivity() {
    private val worker = Executors.newSingleThreadExecutor()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_latency)
        val prefs = getSharedPreferences(Settings.PREFS, MODE_PRIVATE)
        val settings = RunSettings(prefs.getInt(Settings.THREADS, 4), prefs.getBoolean(Settings.GPU, false))
        val model = findViewById<TextView>(R.id.model)
        val warmup = findViewById<EditText>(R.id.warmup)
        val runs = findViewById<EditText>(R.id.runs)
        val result = findViewById<TextView>(R.id.result)
        val recordPath = findViewById<TextView>(R.id.record_path)
        val run = findViewById<Button>(R.id.run)
        model.text = getString(R.string.latency_title) + ": " + settings.accelerator +
            (if (settings.useGpu) "" else ", ${settings.threads} threads")

        run.setOnClickListener {
            val w = warmup.text.toString().toIntOrNull() ?: -1
            val n = runs.text.toString().toIntOrNull() ?: 0
            run.isEnabled = false
            result.text = "…"
            worker.execute {
                val text =
                    try {
                        benchmark(settings, w, n)
                    } catch (e: DeepSquareError) {
                        e.message to null
                    }
                runOnUiThread {
                    result.text = text.first
                    if (text.second != null) recordPath.text = text.second
                    run.isEnabled = true
                }
            }
        }
    }

    /** Returns (what to show, where the record was written). */
    private fun benchmark(settings: RunSettings, warmup: Int, runs: Int): Pair<String, String> {
        val bundle = AppBundle.load(this)
        val meta = bundle.meta
        Classifier.create(this, bundle, settings).use { classifier ->
            // The model is timed only if it passes the self-check: a fast wrong model is not worth a record.
            val check = classifier.selfCheck(bundle)
            if (check != null && !check.passed) throw DeepSquareError(check.message)
            // A fixed input: mid-grey pixels, made into the model input the way a photo's are.
            val grey = ByteArray(meta.inputSize * meta.inputSize * 3) { 128.toByte() }
            val input = ModelInput.of(grey, meta, bundle.entry)
            val times = Benchmark.time(warmup, runs) { classifier.run(input) }
            val record =
                BenchRecord.of(
                    meta, times, warmup = warmup,
                    threads = if (settings.useGpu) null else settings.threads,
                    initMs = classifier.initMs, machine = Device.describe(), accelerator = settings.accelerator,
                    input = bundle.entry.inputKind.json, appVersion = BuildConfig.VERSION_NAME,
                )
            val folder = getExternalFilesDir(null) ?: filesDir
            val file = File(folder, "records.json")
            val existing = if (file.isFile) file.readText() else null
            file.writeText(BenchRecord.append(existing, record))
            val s = record.stats
            val shown =
                String.format(
                    Locale.US,
                    "%s %s, %d px, %s\ninit %.1f ms\n%d runs after %d warm-up\np50 %.3f ms\np90 %.3f ms\n" +
                        "mean %.3f ± %.3f ms\nmin %.3f  max %.3f ms",
                    meta.arch, meta.variant, meta.inputSize, classifier.ranOn, classifier.initMs, s.runs, warmup,
                    s.p50Ms, s.p90Ms, s.meanMs, s.stdMs, s.minMs, s.maxMs,
                )
            return shown to "appended to ${file.absolutePath}"
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.shutdown()
    }
}
