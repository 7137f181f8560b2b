package org.bbemobile.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Bundle
import android.util.Log
import android.view.LayoutInflater
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.ImageView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.exifinterface.media.ExifInterface
import androidx.fragment.app.Fragment
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Still-image screen: pick a picture, segment it, show it with the overlay and the stage timings. */
class GalleryFragment : Fragment() {
    private lateinit var image: ImageView
    private lateinit var overlay: OverlayView
    private lateinit var executor: ExecutorService
    private var segmenter: BbeSegmenter? = null

    private val picker = registerForActivityResult(ActivityResultContracts.GetContent()) { uri ->
        if (uri != null) segment(uri)
    }

    override fun onCreateView(inflater: LayoutInflater, container: ViewGroup?, savedInstanceState: Bundle?): View =
        inflater.inflate(R.layout.fragment_gallery, container, false)

    override fun onViewCreated(view: View, savedInstanceState: Bundle?) {
        image = view.findViewById(R.id.image)
        overlay = view.findViewById(R.id.overlay)
        overlay.fill = false // the ImageView uses fitCenter
        executor = Executors.newSingleThreadExecutor()
        view.findViewById<Button>(R.id.pick).setOnClickListener { picker.launch("image/*") }
        if (!BbeSegmenter.modelExists(requireContext())) {
            overlay.setResult(null, getString(R.string.model_missing, BbeSegmenter.DEFAULT_MODEL))
        }
    }

    private fun segment(uri: Uri) {
        val ctx = requireContext().applicationContext
        val accelerator = (requireActivity() as MainActivity).accelerator
        executor.execute {
            try {
                val bitmap = decode(ctx.contentResolver, uri)
                image.post { image.setImageBitmap(bitmap) }
                val s = segmenter ?: BbeSegmenter.create(ctx, accelerator = accelerator).also { segmenter = it }
                val result = s.segment(bitmap)
                overlay.setResult(result, CameraFragment.describe(result, s, 0.0))
            } catch (e: Exception) {
                Log.e(TAG, "segmentation failed", e)
                overlay.setResult(null, "failed: ${e.message}")
            }
        }
    }

    override fun onDestroyView() {
        super.onDestroyView()
        executor.execute {
            segmenter?.close()
            segmenter = null
        }
        executor.shutdown()
    }

    private companion object {
        const val TAG = "GalleryFragment"
        const val MAX_SIDE = 2048

        /** Decodes [uri] as an upright software ARGB_8888 bitmap, subsampled to at most [MAX_SIDE] pixels. */
        fun decode(resolver: android.content.ContentResolver, uri: Uri): Bitmap {
            val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
            resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
            var sample = 1
            while (Math.max(bounds.outWidth, bounds.outHeight) / sample > MAX_SIDE) sample *= 2
            val options = BitmapFactory.Options().apply {
                inSampleSize = sample
                inPreferredConfig = Bitmap.Config.ARGB_8888
            }
            val bitmap = resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, options) }
                ?: throw IllegalArgumentException("not a readable image: $uri")
            val orientation = resolver.openInputStream(uri).use {
                if (it == null) ExifInterface.ORIENTATION_NORMAL
                else ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
            }
            val degrees = when (orientation) {
                ExifInterface.ORIENTATION_ROTATE_90 -> 90
                ExifInterface.ORIENTATION_ROTATE_180 -> 180
                ExifInterface.ORIENTATION_ROTATE_270 -> 270
                else -> 0
            }
            return CameraFragment.upright(bitmap, degrees)
        }
    }
}
