package org.bbemobile.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View

/**
 * Draws a segmentation result over the camera preview or the picked image: one translucent colour per
 * person, the instance boxes with their scores, and a text block (FPS, per-stage timings).
 *
 * [fill] = true matches a `PreviewView` in `FILL_CENTER` (centre crop), false a `fitCenter` image.
 */
class OverlayView(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    var fill: Boolean = false

    private var mask: Bitmap? = null
    private var boxes = FloatArray(0)
    private var scores = FloatArray(0)
    private var colors = IntArray(0)
    private var names: List<String> = emptyList()
    private var imageWidth = 0
    private var imageHeight = 0
    private var info: String = ""

    private val maskPaint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val boxPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply { style = Paint.Style.STROKE }
    private val textPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.WHITE
        textSize = 14f * resources.displayMetrics.scaledDensity
        setShadowLayer(4f, 0f, 0f, Color.BLACK)
    }

    /**
     * Shows [result] (null clears) with the [text] lines; callable from any thread (the mask bitmap is built
     * on the caller's thread, the view updated on the UI thread). With tracking, each person keeps the colour of
     * their ID (grey until confirmed); [mainOnly] dims everyone but the main person.
     */
    fun setResult(result: BbeSegmenter.Result?, text: String, mainOnly: Boolean = false) {
        val instanceColors = result?.let { instanceColors(it, mainOnly) } ?: IntArray(0)
        val bitmap = result?.let { buildMask(it.imageLabels, it.imageWidth, it.imageHeight, instanceColors) }
        val tracked = result?.tracked
        val labels = List(instanceColors.size) { k ->
            if (tracked == null) "#${k + 1}" else if (tracked.ids[k] == 0) "new" else "id ${tracked.ids[k]}"
        }
        post {
            mask?.recycle()
            mask = bitmap
            boxes = result?.imageBoxes ?: FloatArray(0)
            scores = result?.instances?.scores ?: FloatArray(0)
            colors = instanceColors
            names = labels
            imageWidth = result?.imageWidth ?: 0
            imageHeight = result?.imageHeight ?: 0
            info = text
            invalidate()
        }
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val m = mask
        if (m != null && imageWidth > 0 && imageHeight > 0) {
            val sx = width.toFloat() / imageWidth
            val sy = height.toFloat() / imageHeight
            val s = if (fill) Math.max(sx, sy) else Math.min(sx, sy)
            canvas.save()
            canvas.translate((width - imageWidth * s) / 2f, (height - imageHeight * s) / 2f)
            canvas.scale(s, s)
            canvas.drawBitmap(m, 0f, 0f, maskPaint)
            boxPaint.strokeWidth = 3f / s
            textPaint.textSize = 14f * resources.displayMetrics.scaledDensity / s
            for (k in scores.indices) {
                boxPaint.color = colors[k] or 0xFF000000.toInt()
                canvas.drawRect(boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3], boxPaint)
                canvas.drawText(String.format("%s %.2f", names[k], scores[k]), boxes[4 * k] + 4f / s,
                    boxes[4 * k + 1] + textPaint.textSize, textPaint)
            }
            canvas.restore()
        }
        textPaint.textSize = 14f * resources.displayMetrics.scaledDensity
        var y = textPaint.textSize * 1.5f
        for (line in info.split('\n')) {
            canvas.drawText(line, 16f, y, textPaint)
            y += textPaint.textSize * 1.3f
        }
    }

    companion object {
        /** 20 distinct colours (RGB); instance (or person ID) k uses PALETTE[(k - 1) % 20] at 50% opacity. */
        private val PALETTE = intArrayOf(
            0xE6194B, 0x3CB44B, 0xFFE119, 0x4363D8, 0xF58231, 0x911EB4, 0x46F0F0, 0xF032E6, 0xBCF60C, 0xFABEBE,
            0x008080, 0xE6BEFF, 0x9A6324, 0xFFFAC8, 0x800000, 0xAAFFC3, 0x808000, 0xFFD8B1, 0x000075, 0x808080
        )

        private const val TENTATIVE = 0xA0A0A0  // a person not yet confirmed by the tracker
        private const val DIMMED = 0x303030  // everyone but the main person in main-person mode

        /**
         * RGB colour of each instance: by instance number without tracking; by person ID with it (so a person
         * keeps their colour across frames), grey while tentative, dark grey for the others when [mainOnly].
         */
        fun instanceColors(result: BbeSegmenter.Result, mainOnly: Boolean): IntArray {
            val tracked = result.tracked
            return IntArray(result.instances.count) { k ->
                val id = tracked?.ids?.get(k) ?: (k + 1)
                when {
                    tracked != null && mainOnly && id != tracked.mainId -> DIMMED
                    id == 0 -> TENTATIVE
                    else -> PALETTE[(id - 1) % PALETTE.size]
                }
            }
        }

        /** ARGB mask of a label map: transparent background, instance k in [colors] `[k - 1]`, translucent. */
        fun buildMask(labels: IntArray, width: Int, height: Int, colors: IntArray): Bitmap {
            val argb = IntArray(width * height)
            for (q in argb.indices) {
                val l = labels[q]
                if (l > 0 && l <= colors.size) argb[q] = colors[l - 1] or 0x80000000.toInt()
            }
            return Bitmap.createBitmap(argb, width, height, Bitmap.Config.ARGB_8888)
        }
    }
}
