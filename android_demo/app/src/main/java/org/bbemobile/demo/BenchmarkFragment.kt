package org.bbemobile.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.view.LayoutInflater
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.TextView
import androidx.fragment.app.Fragment
import org.bbemobile.grouper.BenchReport
import org.bbemobile.grouper.BenchResult
import org.bbemobile.grouper.BenchStats
import org.bbemobile.grouper.GoldenCase
import org.bbemobile.grouper.Grouper
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Benchmark screen: times the grouper on the golden benchmark cases packaged as assets, and (when the model is
 * bundled) the preprocessing, one forward pass, the upsampling and the whole pipeline with the chosen
 * accelerator. Writes a `bbe-bench/1` file (source `android-app`) for `bbe-mobile bench --from-device FILE`.
 */
class BenchmarkFragment : Fragment() {
    private lateinit var output: TextView
    private lateinit var run: Button
    private lateinit var executor: ExecutorService

    override fun onCreateView(inflater: LayoutInflater, container: ViewGroup?, savedInstanceState: Bundle?): View =
        inflater.inflate(R.layout.fragment_benchmark, container, false)

    override fun onViewCreated(view: View, savedInstanceState: Bundle?) {
        output = view.findViewById(R.id.output)
        run = view.findViewById(R.id.run)
        executor = Executors.newSingleThreadExecutor()
        run.setOnClickListener {
            run.isEnabled = false
            val ctx = requireContext().applicationContext
            val accelerator = (requireActivity() as MainActivity).accelerator
            executor.execute {
                val text = try {
                    val report = runBenchmark(ctx, accelerator) { line -> output.post { output.append(line + "\n") } }
                    val file = File(ctx.getExternalFilesDir(null) ?: ctx.filesDir, FILE_NAME)
                    file.writeText(report.toJson())
                    "\nwrote ${file.absolutePath}\nadb pull ${file.absolutePath}\n" +
                        "bbe-mobile bench --from-device $FILE_NAME\n\n" + report.toJson()
                } catch (e: Exception) {
                    Log.e(TAG, "benchmark failed", e)
                    "benchmark failed: ${e.message}"
                }
                output.post {
                    output.append(text)
                    run.isEnabled = true
                }
            }
        }
    }

    override fun onDestroyView() {
        super.onDestroyView()
        executor.shutdownNow()
    }

    companion object {
        private const val TAG = "BenchmarkFragment"
        const val FILE_NAME = "bbe-bench.json"
        const val RUNS = 200
        const val WARMUP = 20
        const val MODEL_RUNS = 50
        const val MODEL_WARMUP = 5

        private fun time(runs: Int, warmup: Int, body: () -> Unit): BenchStats {
            for (k in 0 until warmup) body()
            val t = DoubleArray(runs)
            for (k in 0 until runs) {
                val t0 = SystemClock.elapsedRealtimeNanos()
                body()
                t[k] = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
            }
            return BenchStats.of(t)
        }

        /** A deterministic 640x480 test picture (the model's speed does not depend on the content). */
        private fun testImage(): Bitmap {
            val b = Bitmap.createBitmap(640, 480, Bitmap.Config.ARGB_8888)
            val c = Canvas(b)
            c.drawColor(Color.DKGRAY)
            val p = Paint(Paint.ANTI_ALIAS_FLAG)
            for (k in 0 until 5) {
                p.color = Color.rgb(60 * k, 255 - 40 * k, 120)
                c.drawOval(60f + 110f * k, 80f, 140f + 110f * k, 420f, p)
            }
            return b
        }

        /** Runs every stage; [log] receives one line per result. */
        fun runBenchmark(ctx: Context, accelerator: BbeSegmenter.Accelerator, log: (String) -> Unit): BenchReport {
            val results = ArrayList<BenchResult>()
            val open = { name: String -> ctx.assets.open("golden/$name").use { it.readBytes() } }
            val names = (ctx.assets.list("golden") ?: emptyArray())
                .filter { it.startsWith("bench_") && it.endsWith(".json") }
                .map { it.removeSuffix(".json") }
                .sortedWith(compareBy({ it.split('_')[1].toInt() }, { it.split('_')[2].toInt() }))
            for (name in names) {
                val c = GoldenCase.load(name, open)
                val people = c.benchPeople ?: continue
                val grouper = Grouper(c.config)
                val labels = IntArray(c.height * c.width)
                val stats = time(RUNS, WARMUP) { grouper.group(c.prob, c.offsets, c.height, c.width, c.stride, labels) }
                val ok = labels.contentEquals(c.labels)
                results.add(BenchResult("grouper", name, stats, linkedMapOf<String, Any?>(
                    "height" to c.height, "width" to c.width, "people" to people, "labels_ok" to ok)))
                log(String.format("grouper %s: median %.3f ms, p90 %.3f ms%s", name, stats.medianMs, stats.p90Ms,
                    if (ok) "" else "  LABELS DIFFER"))
            }
            if (BbeSegmenter.modelExists(ctx)) {
                BbeSegmenter.create(ctx, accelerator = accelerator).use { s ->
                    val image = testImage()
                    val units = when (s.accelerator) {
                        BbeSegmenter.Accelerator.CPU -> "cpu"
                        BbeSegmenter.Accelerator.GPU -> "gpu"
                        BbeSegmenter.Accelerator.NNAPI -> "nnapi"
                    }
                    // These stages use their own run counts (extra keys are allowed by bbe-bench/1).
                    val extra = linkedMapOf<String, Any?>("precision" to s.metadata.precision, "compute_units" to units,
                        "runs" to MODEL_RUNS, "warmup" to MODEL_WARMUP)
                    val pre = time(MODEL_RUNS, MODEL_WARMUP) { s.preprocess(image) }
                    results.add(BenchResult("preprocess", "640x480", pre, extra))
                    val lb = s.preprocess(image)
                    val model = time(MODEL_RUNS, MODEL_WARMUP) { s.infer() }
                    results.add(BenchResult("model", s.modelAsset, model, extra))
                    val instances = s.group()
                    val up = time(MODEL_RUNS, MODEL_WARMUP) { s.upsample(instances, lb) }
                    results.add(BenchResult("upsample", "640x480", up, extra))
                    val total = time(MODEL_RUNS, MODEL_WARMUP) { s.segment(image) }
                    results.add(BenchResult("total", s.modelAsset, total, extra))
                    for (r in results.takeLast(4)) {
                        log(String.format("%s %s (%s): median %.2f ms, p90 %.2f ms", r.kind, r.name, units, r.stats.medianMs, r.stats.p90Ms))
                    }
                }
            } else {
                log("no ${BbeSegmenter.DEFAULT_MODEL} in the assets: model stages skipped")
            }
            return BenchReport("android-app", Build.MODEL ?: "android", RUNS, WARMUP, results)
        }
    }
}
