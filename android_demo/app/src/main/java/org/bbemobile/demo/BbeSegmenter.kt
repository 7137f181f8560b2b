package org.bbemobile.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Rect
import android.os.SystemClock
import android.util.Log
import org.bbemobile.grouper.BbeMetadata
import org.bbemobile.grouper.Grouper
import org.bbemobile.grouper.Instances
import org.bbemobile.grouper.Letterbox
import org.bbemobile.grouper.TfliteMetadata
import org.bbemobile.grouper.TrackedFrame
import org.bbemobile.grouper.Tracker
import org.bbemobile.grouper.TrackerConfig
import org.bbemobile.grouper.TrackerState
import org.bbemobile.grouper.Upsampling
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.io.Closeable
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * Owns the LiteRT model and runtime (the role of MediaPipe's `ImageSegmenterHelper`): maps the `.tflite`
 * asset, reads its `bbe` metadata (input size, stride, thresholds, anchor, activation, quantisation) and runs
 * letterbox -> model -> grouper -> upsampling, timing each stage.
 *
 * Create it with [create]. Not thread-safe: create, use and [close] it on one background thread.
 */
class BbeSegmenter private constructor(
    /** Asset name of the model. */
    val modelAsset: String,
    /** The model's `bbe` metadata (docs/metadata.md). */
    val metadata: BbeMetadata,
    /** The accelerator actually in use (GPU and NNAPI fall back to the CPU when unavailable). */
    val accelerator: Accelerator,
    private val interpreter: Interpreter,
    private val delegate: Delegate?
) : Closeable {

    /** Where the model runs. */
    enum class Accelerator { CPU, GPU, NNAPI }

    /** Milliseconds per stage of one [segment] call. */
    class Timings(val preprocessMs: Double, val inferenceMs: Double, val grouperMs: Double, val upsampleMs: Double) {
        val totalMs: Double get() = preprocessMs + inferenceMs + grouperMs + upsampleMs
    }

    /**
     * One segmented image: [instances] on the output grid, [imageLabels] (`imageHeight*imageWidth` row-major,
     * 0 = background, k = instance k), [imageBoxes] (`4*M` floats, original pixels) and [timings].
     */
    class Result(
        val instances: Instances,
        val letterbox: Letterbox,
        val imageLabels: IntArray,
        val imageBoxes: FloatArray,
        val timings: Timings,
        /** Person IDs and the main person (docs/tracker.md) when [tracker] is on, else null. */
        val tracked: TrackedFrame? = null
    ) {
        val imageWidth: Int get() = letterbox.imageWidth
        val imageHeight: Int get() = letterbox.imageHeight
    }

    private val grouper = Grouper(metadata.grouper)
    private val inputSize: Int
    private val inputType: DataType
    private val inputScale: Float
    private val inputZeroPoint: Int
    private val input: ByteBuffer
    private val probIndex: Int
    private val offsetsIndex: Int
    private val outputBuffers: Map<Int, ByteBuffer>
    private val gridH: Int
    private val gridW: Int
    private val prob: FloatArray
    private val offsets: FloatArray
    private val canvasBitmap: Bitmap
    private val canvas: Canvas
    private val pixels: IntArray
    private val paint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val dst = Rect()
    private var labelsScratch = IntArray(0)

    /**
     * The video tracker's state (docs/tracker.md: smoothing, person IDs, main person) for a camera stream; null
     * (the default) segments every frame alone. Set `TrackerState()` to start a stream.
     */
    var tracker: TrackerState? = null
    private var trackedFrame: TrackedFrame? = null
    private var letterbox: Letterbox? = null

    init {
        val inT = interpreter.getInputTensor(0)
        val shape = inT.shape()
        require(shape.size == 4 && shape[0] == 1 && shape[1] == shape[2] && shape[3] == 3) {
            "model input must be (1, S, S, 3), got ${shape.contentToString()}"
        }
        if (shape[1] != metadata.inputSize) {
            Log.w(TAG, "input tensor side ${shape[1]} differs from metadata input_size ${metadata.inputSize}: using the tensor's")
        }
        inputSize = shape[1]
        inputType = inT.dataType()
        require(inputType == DataType.FLOAT32 || inputType == DataType.UINT8 || inputType == DataType.INT8) {
            "unsupported input type $inputType"
        }
        val q = inT.quantizationParams()
        val metaQ = metadata.inputQuantization
        inputScale = if (q.scale != 0f) q.scale else (metaQ?.scale?.toFloat() ?: 1f)
        inputZeroPoint = if (q.scale != 0f) q.zeroPoint else (metaQ?.zeroPoint ?: 0)
        input = ByteBuffer.allocateDirect(inT.numBytes()).order(ByteOrder.nativeOrder())

        // Outputs by metadata name, else by channel count (1 = probabilities, 4 = offsets).
        var p = -1
        var o = -1
        for (k in 0 until interpreter.outputTensorCount) {
            val name = interpreter.getOutputTensor(k).name()
            if (p < 0 && name.contains(metadata.probOutput)) p = k
            if (o < 0 && name.contains(metadata.offsetsOutput)) o = k
        }
        for (k in 0 until interpreter.outputTensorCount) {
            val s = interpreter.getOutputTensor(k).shape()
            if (p < 0 && s.size == 4 && s[3] == 1) p = k
            if (o < 0 && s.size == 4 && s[3] == 4) o = k
        }
        require(p >= 0 && o >= 0 && p != o) {
            "cannot find the outputs ${metadata.probOutput} (…, 1) and ${metadata.offsetsOutput} (…, 4)"
        }
        probIndex = p
        offsetsIndex = o
        val ps = interpreter.getOutputTensor(p).shape()
        val os = interpreter.getOutputTensor(o).shape()
        require(ps.size == 4 && os.size == 4 && ps[1] == os[1] && ps[2] == os[2] && ps[3] == 1 && os[3] == 4) {
            "outputs must be (1, H, W, 1) and (1, H, W, 4), got ${ps.contentToString()} and ${os.contentToString()}"
        }
        gridH = ps[1]
        gridW = ps[2]
        val buffers = HashMap<Int, ByteBuffer>()
        for (k in 0 until interpreter.outputTensorCount) {
            buffers[k] = ByteBuffer.allocateDirect(interpreter.getOutputTensor(k).numBytes()).order(ByteOrder.nativeOrder())
        }
        outputBuffers = buffers
        prob = FloatArray(gridH * gridW)
        offsets = FloatArray(gridH * gridW * 4)
        canvasBitmap = Bitmap.createBitmap(inputSize, inputSize, Bitmap.Config.ARGB_8888)
        canvas = Canvas(canvasBitmap)
        pixels = IntArray(inputSize * inputSize)
    }

    /** Output grid size (H, W) of the model. */
    val gridSize: Pair<Int, Int> get() = gridH to gridW

    /**
     * Draws [bitmap] (software ARGB_8888, already upright) into the top-left letterbox (bilinear, black
     * padding) and fills the input tensor (RGB, the metadata's `input_range`, quantised for integer inputs).
     */
    fun preprocess(bitmap: Bitmap): Letterbox {
        val lb = Letterbox(bitmap.height, bitmap.width, inputSize)
        canvas.drawColor(Color.BLACK)
        dst.set(0, 0, lb.contentWidth, lb.contentHeight)
        canvas.drawBitmap(bitmap, null, dst, paint)
        canvasBitmap.getPixels(pixels, 0, inputSize, 0, 0, inputSize, inputSize)
        val lo = metadata.inputRange[0].toFloat()
        val k = ((metadata.inputRange[1] - metadata.inputRange[0]) / 255.0).toFloat()
        input.rewind()
        when (inputType) {
            DataType.FLOAT32 -> for (c in pixels) {
                input.putFloat(lo + k * ((c shr 16) and 0xFF))
                input.putFloat(lo + k * ((c shr 8) and 0xFF))
                input.putFloat(lo + k * (c and 0xFF))
            }
            else -> {
                val min = if (inputType == DataType.UINT8) 0 else -128
                val max = if (inputType == DataType.UINT8) 255 else 127
                fun put(v: Int) {
                    val qv = Math.round((lo + k * v) / inputScale) + inputZeroPoint
                    input.put((if (qv < min) min else if (qv > max) max else qv).toByte())
                }
                for (c in pixels) {
                    put((c shr 16) and 0xFF)
                    put((c shr 8) and 0xFF)
                    put(c and 0xFF)
                }
            }
        }
        input.rewind()
        return lb
    }

    /** Runs the model on the prepared input. */
    fun infer() {
        for (b in outputBuffers.values) b.rewind()
        interpreter.runForMultipleInputsOutputs(arrayOf<Any>(input), outputBuffers)
    }

    /** Groups the last outputs into instances (dequantising and applying a sigmoid when needed). */
    fun group(): Instances {
        val pb = outputBuffers.getValue(probIndex)
        val ob = outputBuffers.getValue(offsetsIndex)
        pb.rewind()
        ob.rewind()
        val pt = interpreter.getOutputTensor(probIndex)
        val ot = interpreter.getOutputTensor(offsetsIndex)
        val sigmoid = metadata.probActivation == "sigmoid"
        val state = tracker
        if (state == null && pt.dataType() == DataType.FLOAT32 && ot.dataType() == DataType.FLOAT32 && !sigmoid) {
            // Direct buffers straight into the grouper: no copy on our side.
            return grouper.group(pb.asFloatBuffer(), ob.asFloatBuffer(), gridH, gridW, metadata.stride)
        }
        dequantize(pb, pt.dataType(), pt.quantizationParams().scale, pt.quantizationParams().zeroPoint, prob)
        dequantize(ob, ot.dataType(), ot.quantizationParams().scale, ot.quantizationParams().zeroPoint, offsets)
        if (sigmoid) for (k in prob.indices) prob[k] = (1.0 / (1.0 + Math.exp(-prob[k].toDouble()))).toFloat()
        if (state == null) return grouper.group(prob, offsets, gridH, gridW, metadata.stride)
        val lb = letterbox
        val cellsPerPixel = gridH.toDouble() / inputSize
        val step = Tracker.step(state, prob, gridH, gridW, TrackerConfig(),
            lb?.let { it.contentHeight * cellsPerPixel } ?: Double.NaN,
            lb?.let { it.contentWidth * cellsPerPixel } ?: Double.NaN) { smoothed ->
            grouper.group(smoothed, offsets, gridH, gridW, metadata.stride)
        }
        tracker = step.state
        trackedFrame = step.frame
        return step.instances
    }

    /** Labels of [instances] on the original image of [letterbox] (nearest cell, docs/grouper.md). */
    fun upsample(instances: Instances, letterbox: Letterbox): IntArray {
        val n = letterbox.imageHeight * letterbox.imageWidth
        // A fresh array per result: the overlay keeps drawing the previous one while the next frame runs.
        return Upsampling.labelsToImage(
            instances.labels, instances.height, instances.width, metadata.stride, letterbox.scale,
            letterbox.imageHeight, letterbox.imageWidth, IntArray(n)
        )
    }

    /** The whole pipeline on an upright software bitmap. */
    fun segment(bitmap: Bitmap): Result {
        val t0 = SystemClock.elapsedRealtimeNanos()
        val lb = preprocess(bitmap)
        letterbox = lb
        trackedFrame = null
        val t1 = SystemClock.elapsedRealtimeNanos()
        infer()
        val t2 = SystemClock.elapsedRealtimeNanos()
        val instances = group()
        val t3 = SystemClock.elapsedRealtimeNanos()
        val labels = upsample(instances, lb)
        val boxes = lb.boxesToImage(instances.boxes)
        val t4 = SystemClock.elapsedRealtimeNanos()
        return Result(instances, lb, labels, boxes, Timings(ms(t1 - t0), ms(t2 - t1), ms(t3 - t2), ms(t4 - t3)),
            trackedFrame)
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }

    private fun dequantize(b: ByteBuffer, type: DataType, scale: Float, zeroPoint: Int, out: FloatArray) {
        when (type) {
            DataType.FLOAT32 -> b.asFloatBuffer().get(out)
            DataType.UINT8 -> for (k in out.indices) out[k] = scale * ((b.get(k).toInt() and 0xFF) - zeroPoint)
            DataType.INT8 -> for (k in out.indices) out[k] = scale * (b.get(k).toInt() - zeroPoint)
            else -> throw IllegalArgumentException("unsupported output type $type")
        }
    }

    companion object {
        private const val TAG = "BbeSegmenter"

        /** The asset name the app looks for: `app/src/main/assets/bbe.tflite`. */
        const val DEFAULT_MODEL = "bbe.tflite"

        private fun ms(ns: Long): Double = ns / 1e6

        /** True when the APK holds [asset]. */
        fun modelExists(context: Context, asset: String = DEFAULT_MODEL): Boolean = try {
            context.assets.openFd(asset).close()
            true
        } catch (e: FileNotFoundException) {
            false
        }

        private fun mapAsset(context: Context, asset: String): MappedByteBuffer =
            context.assets.openFd(asset).use { fd ->
                FileInputStream(fd.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }

        /**
         * Loads [modelAsset] with the requested [accelerator]; a GPU or NNAPI delegate that is unsupported or
         * fails to initialise falls back to the CPU ([BbeSegmenter.accelerator] tells which was used).
         *
         * @throws IllegalArgumentException when the model lacks the `bbe` metadata or has unexpected tensors.
         */
        fun create(
            context: Context,
            modelAsset: String = DEFAULT_MODEL,
            accelerator: Accelerator = Accelerator.CPU,
            numThreads: Int = 4
        ): BbeSegmenter {
            val model = mapAsset(context, modelAsset)
            val metadata = TfliteMetadata.readBbeMetadata(model)
            if (accelerator != Accelerator.CPU) {
                var delegate: Delegate? = null
                var interpreter: Interpreter? = null
                try {
                    delegate = when (accelerator) {
                        Accelerator.GPU -> {
                            val compat = CompatibilityList()
                            if (compat.isDelegateSupportedOnThisDevice) GpuDelegate(compat.bestOptionsForThisDevice) else null
                        }
                        else -> NnApiDelegate()
                    }
                    if (delegate != null) {
                        val options = Interpreter.Options().setNumThreads(numThreads).addDelegate(delegate)
                        interpreter = Interpreter(model, options)
                        return BbeSegmenter(modelAsset, metadata, accelerator, interpreter, delegate)
                    }
                    Log.w(TAG, "$accelerator not supported on this device: using the CPU")
                } catch (e: Exception) {
                    Log.w(TAG, "$accelerator delegate failed: using the CPU", e)
                    interpreter?.close()
                    (delegate as? AutoCloseable)?.close()
                }
            }
            val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(numThreads))
            try {
                return BbeSegmenter(modelAsset, metadata, Accelerator.CPU, interpreter, null)
            } catch (e: RuntimeException) {
                interpreter.close()
                throw e
            }
        }
    }
}
