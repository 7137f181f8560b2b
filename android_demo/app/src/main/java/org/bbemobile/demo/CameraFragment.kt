package org.bbemobile.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.view.LayoutInflater
import android.view.View
import android.view.ViewGroup
import android.widget.CheckBox
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import androidx.fragment.app.Fragment
import org.bbemobile.grouper.TrackerState
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live camera screen: CameraX preview plus an RGBA image analysis stream; each frame is rotated upright,
 * segmented and tracked (docs/tracker.md: smoothing, one colour per person ID) on a background thread and drawn
 * by [OverlayView] with FPS and per-stage timings. The "main person" box dims everyone else.
 */
class CameraFragment : Fragment() {
    private lateinit var previewView: PreviewView
    private lateinit var overlay: OverlayView
    private lateinit var executor: ExecutorService
    private var segmenter: BbeSegmenter? = null
    private var cameraProvider: ProcessCameraProvider? = null
    private var lastFrameNs = 0L
    private var fps = 0.0
    @Volatile
    private var mainOnly = false

    private val permission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else overlay.setResult(null, getString(R.string.camera_permission_denied))
    }

    override fun onCreateView(inflater: LayoutInflater, container: ViewGroup?, savedInstanceState: Bundle?): View =
        inflater.inflate(R.layout.fragment_camera, container, false)

    override fun onViewCreated(view: View, savedInstanceState: Bundle?) {
        previewView = view.findViewById(R.id.preview)
        overlay = view.findViewById(R.id.overlay)
        overlay.fill = true // PreviewView's default scale type is FILL_CENTER
        view.findViewById<CheckBox>(R.id.main_person).setOnCheckedChangeListener { _, checked -> mainOnly = checked }
        executor = Executors.newSingleThreadExecutor()
        val ctx = requireContext().applicationContext
        if (!BbeSegmenter.modelExists(ctx)) {
            overlay.setResult(null, getString(R.string.model_missing, BbeSegmenter.DEFAULT_MODEL))
            return
        }
        val accelerator = (requireActivity() as MainActivity).accelerator
        executor.execute {
            try {
                segmenter = BbeSegmenter.create(ctx, accelerator = accelerator).also { it.tracker = TrackerState() }
            } catch (e: Exception) {
                Log.e(TAG, "cannot load the model", e)
                overlay.setResult(null, "cannot load the model: ${e.message}")
            }
        }
        if (ContextCompat.checkSelfPermission(ctx, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(requireContext())
        future.addListener({
            if (view == null) return@addListener
            val provider = future.get()
            cameraProvider = provider
            val selector = ResolutionSelector.Builder()
                .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY)
                .build()
            val preview = Preview.Builder().setResolutionSelector(selector).build()
            preview.setSurfaceProvider(previewView.surfaceProvider)
            val analysis = ImageAnalysis.Builder()
                .setResolutionSelector(selector)
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(executor) { image -> analyze(image) }
            try {
                provider.unbindAll()
                provider.bindToLifecycle(viewLifecycleOwner, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
            } catch (e: Exception) {
                Log.e(TAG, "camera binding failed", e)
                Toast.makeText(requireContext(), "camera: ${e.message}", Toast.LENGTH_LONG).show()
            }
        }, ContextCompat.getMainExecutor(requireContext()))
    }

    /** Runs on [executor]. */
    private fun analyze(image: ImageProxy) {
        val s = segmenter
        if (s == null) {
            image.close()
            return
        }
        val frame: Bitmap
        try {
            frame = upright(image.toBitmap(), image.imageInfo.rotationDegrees)
        } finally {
            image.close()
        }
        val result = s.segment(frame)
        val now = SystemClock.elapsedRealtimeNanos()
        if (lastFrameNs != 0L) {
            val instant = 1e9 / (now - lastFrameNs)
            fps = if (fps == 0.0) instant else 0.9 * fps + 0.1 * instant
        }
        lastFrameNs = now
        overlay.setResult(result, describe(result, s, fps), mainOnly)
    }

    override fun onDestroyView() {
        super.onDestroyView()
        cameraProvider?.unbindAll()
        executor.execute {
            segmenter?.close()
            segmenter = null
        }
        executor.shutdown()
    }

    companion object {
        private const val TAG = "CameraFragment"

        /** [bitmap] rotated clockwise by [degrees] (the camera sensor's orientation). */
        fun upright(bitmap: Bitmap, degrees: Int): Bitmap {
            if (degrees == 0) return bitmap
            val m = Matrix()
            m.postRotate(degrees.toFloat())
            return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
        }

        /** Overlay text: people, FPS (when > 0), accelerator and per-stage timings. */
        fun describe(r: BbeSegmenter.Result, s: BbeSegmenter, fps: Double): String {
            val t = r.timings
            val head = if (fps > 0) String.format("%d people  %.1f FPS  %s", r.instances.count, fps, s.accelerator)
            else String.format("%d people  %s", r.instances.count, s.accelerator)
            return head + "\n" + String.format(
                "pre %.1f  model %.1f  group %.2f  upsample %.1f  total %.1f ms",
                t.preprocessMs, t.inferenceMs, t.grouperMs, t.upsampleMs, t.totalMs
            ) + "\n" + "${s.metadata.modelName} ${s.metadata.precision} ${s.metadata.inputSize}px"
        }
    }
}
