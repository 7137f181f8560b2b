package org.bbemobile.grouper

/**
 * The `bbe` metadata object every exported model carries (docs/metadata.md). All keys are required;
 * `input_quantization` may be JSON `null` (float input).
 *
 * @property format `bbe-mobile/1`; other major versions are rejected.
 * @property inputSize square canvas side S in pixels; feed the top-left letterbox ([Letterbox]).
 * @property inputRange pixel values the model expects, e.g. `[0.0, 255.0]` (normalisation is in the model).
 * @property inputDtype `float32`, `uint8` or `int8`.
 * @property inputQuantization `[scale, zero_point]` for integer input, else `null`.
 * @property stride input pixels per output cell.
 * @property grouper the grouper thresholds and anchor.
 * @property probActivation `none` (probabilities) or `sigmoid` (logits: apply a sigmoid before grouping).
 */
data class BbeMetadata(
    val format: String,
    val inputSize: Int,
    val inputName: String,
    val inputLayout: String,
    val inputRange: List<Double>,
    val inputChannels: String,
    val inputDtype: String,
    val inputQuantization: Quantization?,
    val stride: Double,
    val grouper: GrouperConfig,
    val probOutput: String,
    val offsetsOutput: String,
    val probActivation: String,
    val outputLayout: String,
    val modelName: String,
    val modelVersion: String,
    val toolkitVersion: String,
    val precision: String
) {
    /** Affine quantisation: `real = scale * (q - zeroPoint)`. */
    data class Quantization(val scale: Double, val zeroPoint: Int)

    /** Side of the output maps, `inputSize / stride` cells (rounded down). */
    val outputSize: Int get() = Math.floor(inputSize / stride).toInt()

    companion object {
        /** The format tag this reader understands. */
        const val FORMAT: String = "bbe-mobile/1"

        /**
         * Parses the `bbe` metadata JSON text.
         *
         * @throws IllegalArgumentException on malformed JSON, a missing key (the message names it), a wrong
         *   type, an unsupported format or invalid values.
         */
        @JvmStatic
        fun parse(json: String): BbeMetadata = fromMap(MiniJson.parseObject(json, "bbe metadata"))

        /** Same as [parse] on an already parsed object. */
        @JvmStatic
        fun fromMap(obj: Map<String, Any?>): BbeMetadata {
            val r = JsonFields(obj, "bbe metadata")
            val format = r.string("format")
            require(format == FORMAT) { "bbe metadata format must be \"$FORMAT\", got ${BenchReport.quote(format)}" }
            val inputSize = r.int("input_size")
            require(inputSize > 0) { "bbe metadata input_size must be > 0, got $inputSize" }
            val range = r.doubles("input_range")
            require(range.size == 2) { "bbe metadata input_range must be [min, max], got ${range.size} values" }
            val quant = r.raw("input_quantization")
            val quantization = if (quant == null) null else {
                val q = r.doubles("input_quantization")
                require(q.size == 2 && q[0] > 0.0 && q[1] == Math.rint(q[1])) {
                    "bbe metadata input_quantization must be [scale > 0, integer zero_point], got ${q.toList()}"
                }
                Quantization(q[0], q[1].toInt())
            }
            val dtype = r.string("input_dtype")
            require(dtype == "float32" || dtype == "uint8" || dtype == "int8") {
                "bbe metadata input_dtype must be float32, uint8 or int8, got ${BenchReport.quote(dtype)}"
            }
            val stride = r.double("stride")
            require(!stride.isNaN() && !stride.isInfinite() && stride > 0.0) {
                "bbe metadata stride must be finite and > 0, got $stride"
            }
            val activation = r.string("prob_activation")
            require(activation == "none" || activation == "sigmoid") {
                "bbe metadata prob_activation must be \"none\" or \"sigmoid\", got ${BenchReport.quote(activation)}"
            }
            return BbeMetadata(
                format = format,
                inputSize = inputSize,
                inputName = r.text("input_name"),
                inputLayout = r.string("input_layout"),
                inputRange = listOf(range[0], range[1]),
                inputChannels = r.string("input_channels"),
                inputDtype = dtype,
                inputQuantization = quantization,
                stride = stride,
                grouper = GrouperConfig.fromMetadata(obj),
                probOutput = r.text("prob_output"),
                offsetsOutput = r.text("offsets_output"),
                probActivation = activation,
                outputLayout = r.string("output_layout"),
                modelName = r.text("model_name"),
                modelVersion = r.text("model_version"),
                toolkitVersion = r.text("toolkit_version"),
                precision = r.text("precision")
            )
        }
    }
}
