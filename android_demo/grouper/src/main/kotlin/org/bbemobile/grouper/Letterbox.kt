package org.bbemobile.grouper

/**
 * Geometry of the top-left letterbox every path uses (docs/grouper.md, "Letterbox and upsampling"):
 * the image of size `(imageHeight, imageWidth)` is resized by `scale = inputSize / max(h0, w0)` to
 * `(contentHeight, contentWidth)` = `(round(h0 * scale), round(w0 * scale))` (at least 1; rounding half to
 * even like Python's `round`) and placed at the top-left of an `inputSize x inputSize` canvas, the rest black.
 * `x_input = x_orig * scale`.
 *
 * @property imageHeight original height h0 (> 0).
 * @property imageWidth original width w0 (> 0).
 * @property inputSize model input side S (> 0).
 */
class Letterbox(val imageHeight: Int, val imageWidth: Int, val inputSize: Int) {
    init {
        require(imageHeight > 0 && imageWidth > 0) { "image must be non-empty, got ${imageHeight}x$imageWidth" }
        require(inputSize > 0) { "inputSize must be > 0, got $inputSize" }
    }

    /** Input pixels per original pixel. */
    val scale: Double = inputSize.toDouble() / Math.max(imageHeight, imageWidth)

    /** Height of the resized image on the canvas, input pixels. */
    val contentHeight: Int = Math.max(1, Math.rint(imageHeight * scale).toInt())

    /** Width of the resized image on the canvas, input pixels. */
    val contentWidth: Int = Math.max(1, Math.rint(imageWidth * scale).toInt())

    /** Instance boxes (input pixels, `4*M`) to original-image pixels, clipped; see [Upsampling.boxesToImage]. */
    fun boxesToImage(boxes: FloatArray): FloatArray = Upsampling.boxesToImage(boxes, scale, imageHeight, imageWidth)

    /** The label map of [instances] at [stride] to the original image; see [Upsampling.labelsToImage]. */
    @JvmOverloads
    fun labelsToImage(instances: Instances, stride: Double, out: IntArray? = null): IntArray =
        Upsampling.labelsToImage(
            instances.labels, instances.height, instances.width, stride, scale, imageHeight, imageWidth, out
        )

    override fun toString(): String =
        "Letterbox(${imageHeight}x$imageWidth -> ${contentHeight}x$contentWidth on $inputSize, scale=$scale)"
}

/** Mapping grouper outputs back to the original image through the top-left letterbox of factor `scale`. */
object Upsampling {
    /**
     * Boxes `x1, y1, x2, y2` (input pixels, `4*M` floats) to original-image pixels: each coordinate divided
     * by [scale] (float64), x clipped to `[0, imageWidth]`, y to `[0, imageHeight]`, rounded to float32.
     */
    @JvmStatic
    fun boxesToImage(boxes: FloatArray, scale: Double, imageHeight: Int, imageWidth: Int): FloatArray {
        require(boxes.size % 4 == 0) { "boxes must hold 4 values per box, got ${boxes.size}" }
        require(!scale.isNaN() && !scale.isInfinite() && scale > 0.0) { "scale must be finite and > 0, got $scale" }
        val out = FloatArray(boxes.size)
        for (q in boxes.indices) {
            val v = boxes[q].toDouble() / scale
            val hi = if (q % 2 == 0) imageWidth.toDouble() else imageHeight.toDouble()
            out[q] = (if (v < 0.0) 0.0 else if (v > hi) hi else v).toFloat()
        }
        return out
    }

    /**
     * Label map `(height, width)` at [stride] to the `(imageHeight, imageWidth)` original image, nearest cell:
     * pixel `(v, u)` takes `labels[i, j]` with `j = floor((u + 0.5) * scale / stride)` and
     * `i = floor((v + 0.5) * scale / stride)` clamped to the map (float64). An empty map gives all zeros.
     *
     * @param out optional array of at least `imageHeight*imageWidth` ints to fill (returned); new when null.
     */
    @JvmStatic
    @JvmOverloads
    fun labelsToImage(
        labels: IntArray,
        height: Int,
        width: Int,
        stride: Double,
        scale: Double,
        imageHeight: Int,
        imageWidth: Int,
        out: IntArray? = null
    ): IntArray {
        require(height >= 0 && width >= 0 && labels.size.toLong() >= height.toLong() * width) {
            "labels has ${labels.size} values, expected ${height}x$width"
        }
        require(imageHeight >= 0 && imageWidth >= 0) { "image size must be >= 0, got ${imageHeight}x$imageWidth" }
        require(!stride.isNaN() && !stride.isInfinite() && stride > 0.0) { "stride must be finite and > 0, got $stride" }
        require(!scale.isNaN() && !scale.isInfinite() && scale > 0.0) { "scale must be finite and > 0, got $scale" }
        val n0 = imageHeight * imageWidth
        val res = out ?: IntArray(n0)
        require(res.size >= n0) { "out has ${res.size} entries, needs at least $n0" }
        if (height == 0 || width == 0) {
            java.util.Arrays.fill(res, 0, n0, 0)
            return res
        }
        val cols = IntArray(imageWidth)
        for (u in 0 until imageWidth) cols[u] = cellIndex(u, scale, stride, width)
        for (v in 0 until imageHeight) {
            val src = cellIndex(v, scale, stride, height) * width
            val dst = v * imageWidth
            for (u in 0 until imageWidth) res[dst + u] = labels[src + cols[u]]
        }
        return res
    }

    /** `clamp(floor((k + 0.5) * scale / stride), 0, n - 1)` in float64. */
    @JvmStatic
    fun cellIndex(k: Int, scale: Double, stride: Double, n: Int): Int {
        val f = Math.floor((k + 0.5) * scale / stride)
        return if (f < 0.0) 0 else if (f > n - 1.0) n - 1 else f.toInt()
    }
}
