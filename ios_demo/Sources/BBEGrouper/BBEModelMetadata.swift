import Foundation

/// The `"bbe"` JSON object every exported model carries (docs/metadata.md), format `bbe-mobile/1`.
///
/// On Apple platforms BBEKit reads it from
/// `MLModel.modelDescription.metadata[.creatorDefinedKey]["bbe"]` and passes the string to
/// ``init(jsonString:)``. All keys are required; `input_quantization` may be `null`.
public struct BBEModelMetadata: Equatable, Sendable {
    /// The key under which the JSON object is stored in every artifact.
    public static let key = "bbe"
    /// The format this parser understands.
    public static let supportedFormat = "bbe-mobile/1"

    /// Activation to apply to the probability output before grouping.
    public enum ProbActivation: String, Sendable {
        /// The output already holds probabilities in [0, 1].
        case none
        /// The output holds logits: apply a sigmoid first.
        case sigmoid
    }

    public var format: String
    /// Square canvas side in pixels (the letterbox target, docs/grouper.md).
    public var inputSize: Int
    public var inputName: String
    public var inputLayout: String
    /// Pixel values the model expects, e.g. `[0, 255]` (normalisation is inside the model).
    public var inputRange: [Double]
    public var inputChannels: String
    public var inputDtype: String
    /// `[scale, zero_point]` for integer inputs, else `nil`.
    public var inputQuantization: [Double]?
    /// Input pixels per output cell.
    public var stride: Double
    /// Output name of the person probabilities, shape `(1, S/stride, S/stride, 1)`.
    public var probOutput: String
    /// Output name of the box offsets `(dx, dy, dw, dh)`, shape `(1, S/stride, S/stride, 4)`.
    public var offsetsOutput: String
    public var probActivation: ProbActivation
    public var outputLayout: String
    public var modelName: String
    public var modelVersion: String
    public var toolkitVersion: String
    public var precision: String
    /// The grouper fields, mapped one to one onto ``GrouperConfiguration``.
    public var grouper: GrouperConfiguration

    /// Every required key, in the order of docs/metadata.md.
    public static let requiredKeys = [
        "format", "input_size", "input_name", "input_layout", "input_range", "input_channels", "input_dtype",
        "input_quantization", "stride", "anchor_w", "anchor_h", "max_log_scale", "t_c", "t_nms", "t_fg",
        "t_iou", "max_instances", "prob_output", "offsets_output", "prob_activation", "output_layout",
        "model_name", "model_version", "toolkit_version", "precision",
    ]

    /// Reads a decoded JSON object.
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` naming the first missing key (in the order of
    ///   ``requiredKeys``) or the first key with a wrong type or value; ``BBEGrouperError/invalidConfiguration(_:)``
    ///   for grouper thresholds out of range.
    public init(object: [String: Any]) throws {
        let m = MetadataReader(object)
        for key in BBEModelMetadata.requiredKeys where object[key] == nil {
            throw BBEGrouperError.badMetadata("missing key \"\(key)\"")
        }
        format = try m.string("format")
        guard format == BBEModelMetadata.supportedFormat else {
            throw BBEGrouperError.badMetadata(
                "key \"format\" is \(format.debugDescription), this reader supports \"\(BBEModelMetadata.supportedFormat)\"")
        }
        inputSize = try m.int("input_size")
        guard inputSize > 0 else { throw BBEGrouperError.badMetadata("key \"input_size\" must be > 0, got \(inputSize)") }
        inputName = try m.string("input_name")
        inputLayout = try m.string("input_layout")
        inputRange = try m.doubles("input_range")
        guard inputRange.count == 2 else {
            throw BBEGrouperError.badMetadata("key \"input_range\" must hold 2 numbers, got \(inputRange.count)")
        }
        inputChannels = try m.string("input_channels")
        inputDtype = try m.string("input_dtype")
        inputQuantization = try m.optionalDoubles("input_quantization")
        stride = try m.double("stride")
        guard stride.isFinite, stride > 0 else { throw BBEGrouperError.badMetadata("key \"stride\" must be > 0, got \(stride)") }
        probOutput = try m.string("prob_output")
        offsetsOutput = try m.string("offsets_output")
        let activation = try m.string("prob_activation")
        guard let parsed = ProbActivation(rawValue: activation) else {
            throw BBEGrouperError.badMetadata("key \"prob_activation\" must be \"none\" or \"sigmoid\", got \(activation.debugDescription)")
        }
        probActivation = parsed
        outputLayout = try m.string("output_layout")
        guard outputLayout == "NHWC" else {
            throw BBEGrouperError.badMetadata("key \"output_layout\" must be \"NHWC\", got \(outputLayout.debugDescription)")
        }
        modelName = try m.string("model_name")
        modelVersion = try m.string("model_version")
        toolkitVersion = try m.string("toolkit_version")
        precision = try m.string("precision")
        grouper = try GrouperConfiguration(metadata: object)
    }

    /// Parses the `"bbe"` JSON string.
    public init(jsonString: String) throws {
        try self.init(object: try MetadataReader.object(fromJSON: jsonString))
    }

    /// Reads the `"bbe"` entry of a string-to-string metadata dictionary (Core ML's creator-defined metadata).
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` `missing key "bbe"` when the model carries no entry.
    public init(creatorDefined: [String: String]) throws {
        guard let json = creatorDefined[BBEModelMetadata.key] else {
            throw BBEGrouperError.badMetadata(
                "missing key \"bbe\" in the model's user-defined metadata (was it exported by `bbe-mobile convert`?)")
        }
        try self.init(jsonString: json)
    }

    /// Side of the model's output maps: `input_size / stride` rounded down.
    public var outputSide: Int { Int((Double(inputSize) / stride).rounded(.down)) }
}
