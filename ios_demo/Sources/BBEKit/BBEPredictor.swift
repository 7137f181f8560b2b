#if canImport(CoreML) && canImport(CoreGraphics) && canImport(CoreVideo)
import BBEGrouper
import CoreGraphics
import CoreML
import CoreVideo
import Foundation

/// One person instance in original-image coordinates.
public struct BBEInstance: Sendable, Identifiable {
    /// Instance number `k` (1...M), also its value in ``BBEPrediction/labels``.
    public var id: Int
    /// Box in original-image pixels, clipped to the image.
    public var box: Box
    /// Mean person probability of the instance's cells.
    public var score: Float
}

/// Wall-clock milliseconds of each stage of one prediction (docs/bench-format.md kinds).
public struct BBETimings: Sendable {
    public var preprocess: Double = 0
    public var model: Double = 0
    public var grouper: Double = 0
    public var upsample: Double = 0
    public var total: Double { preprocess + model + grouper + upsample }
}

/// The result of ``BBEPredictor/predict(_:)``.
public struct BBEPrediction: Sendable {
    /// The instances, in label order.
    public var instances: [BBEInstance]
    /// `imageHeight * imageWidth` labels of the original image (0 = background, k = instance k), or empty when
    /// ``BBEPredictor/Configuration/upsampleLabels`` is off.
    public var labels: [Int32]
    public var imageWidth: Int
    public var imageHeight: Int
    /// The grouper's output at model resolution (labels `H x W`, boxes in input pixels).
    public var grouped: GrouperResult
    /// The letterbox used.
    public var letterbox: LetterboxGeometry
    public var timings: BBETimings
    /// Person IDs and the main person (docs/tracker.md) when ``BBEPredictor/tracker`` is on, else `nil`.
    public var tracked: TrackedFrame? = nil
}

/// Runs a BBE Core ML model and the grouper on images: letterbox -> model -> (sigmoid) -> grouper ->
/// masks and boxes in image coordinates. Not thread-safe: use one predictor per queue or actor.
public final class BBEPredictor {
    public let model: BBEModel
    public var configuration: Configuration
    /// The metadata of ``model``.
    public var metadata: BBEModelMetadata { model.metadata }

    private let preprocessor: ImagePreprocessor
    private let grouper: Grouper
    private let inputIsImage: Bool
    private var currentLetterbox: LetterboxGeometry?
    private var trackedFrame: TrackedFrame?

    /// The video tracker's state (docs/tracker.md: smoothing, person IDs, main person) for a camera stream; `nil`
    /// (the default) segments every frame alone. Set `TrackerState()` to start a stream.
    public var tracker: TrackerState? = nil

    /// Checks the model's input and outputs against its metadata.
    public init(model: BBEModel, configuration: Configuration = Configuration()) throws {
        self.model = model
        self.configuration = configuration
        let meta = model.metadata
        let description = model.model.modelDescription
        guard let input = description.inputDescriptionsByName[meta.inputName] else {
            throw BBEKitError.modelMismatch("no input named \"\(meta.inputName)\" (inputs: "
                                            + description.inputDescriptionsByName.keys.sorted().joined(separator: ", ") + ")")
        }
        switch input.type {
        case .image: inputIsImage = true
        case .multiArray: inputIsImage = false
        default: throw BBEKitError.modelMismatch("input \"\(meta.inputName)\" must be an image or a multi-array")
        }
        for name in [meta.probOutput, meta.offsetsOutput] where description.outputDescriptionsByName[name] == nil {
            throw BBEKitError.modelMismatch("no output named \"\(name)\" (outputs: "
                                            + description.outputDescriptionsByName.keys.sorted().joined(separator: ", ") + ")")
        }
        preprocessor = ImagePreprocessor(side: meta.inputSize)
        grouper = Grouper(configuration: configuration.grouper ?? meta.grouper)
        try grouper.configuration.validate()
    }

    /// Loads the model at `url` (see ``BBEModel/load(contentsOf:computeUnits:)``) and creates a predictor.
    public static func load(contentsOf url: URL, configuration: Configuration = Configuration()) async throws -> BBEPredictor {
        try BBEPredictor(model: try await BBEModel.load(contentsOf: url, computeUnits: configuration.computeUnits),
                         configuration: configuration)
    }

    /// Segments the people of a camera frame (rotated by `orientation` first).
    public func predict(_ pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up) throws -> BBEPrediction {
        let start = DispatchTime.now()
        let image = try preprocessor.cgImage(from: pixelBuffer, orientation: orientation)
        var prediction = try predict(image)
        prediction.timings.preprocess += milliseconds(since: start) - prediction.timings.total
        return prediction
    }

    /// A camera frame as an upright `CGImage` (camera buffers are landscape: `.right` for a portrait back camera).
    /// Use it with `predict(_ image: CGImage)` when the frame is also displayed, to convert only once.
    public func image(from pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up) throws -> CGImage {
        try preprocessor.cgImage(from: pixelBuffer, orientation: orientation)
    }

    /// Segments the people of `image`.
    public func predict(_ image: CGImage) throws -> BBEPrediction {
        var timings = BBETimings()
        var t = DispatchTime.now()
        let (input, letterbox) = try prepare(image)
        timings.preprocess = milliseconds(since: t)
        currentLetterbox = letterbox
        trackedFrame = nil

        t = DispatchTime.now()
        let outputs = try runModel(input)
        timings.model = milliseconds(since: t)

        t = DispatchTime.now()
        let grouped = try group(outputs)
        timings.grouper = milliseconds(since: t)

        t = DispatchTime.now()
        let labels = configuration.upsampleLabels ? try grouped.labelsToImage(letterbox, stride: metadata.stride) : []
        let boxes = grouped.boxesToImage(letterbox)
        timings.upsample = milliseconds(since: t)

        let instances = boxes.indices.map { BBEInstance(id: $0 + 1, box: boxes[$0], score: grouped.scores[$0]) }
        return BBEPrediction(instances: instances, labels: labels, imageWidth: image.width, imageHeight: image.height,
                             grouped: grouped, letterbox: letterbox, timings: timings, tracked: trackedFrame)
    }

    // MARK: - Stages (public for the benchmark screen)

    /// The model's input feature for `image` and the letterbox geometry.
    public func prepare(_ image: CGImage) throws -> (MLFeatureProvider, LetterboxGeometry) {
        let value: MLFeatureValue
        let letterbox: LetterboxGeometry
        if inputIsImage {
            let (buffer, box) = try preprocessor.letterboxPixelBuffer(image)
            value = MLFeatureValue(pixelBuffer: buffer)
            letterbox = box
        } else {
            let (array, box) = try preprocessor.letterboxMultiArray(image, range: metadata.inputRange)
            value = MLFeatureValue(multiArray: array)
            letterbox = box
        }
        return (try MLDictionaryFeatureProvider(dictionary: [metadata.inputName: value]), letterbox)
    }

    /// One forward pass.
    public func runModel(_ input: MLFeatureProvider) throws -> MLFeatureProvider {
        try model.model.prediction(from: input)
    }

    /// Converts the two outputs to contiguous floats (Float16 or Float32, any strides), applies the sigmoid when
    /// `prob_activation == "sigmoid"`, and runs the grouper.
    public func group(_ outputs: MLFeatureProvider) throws -> GrouperResult {
        let meta = metadata
        guard let probArray = outputs.featureValue(for: meta.probOutput)?.multiArrayValue else {
            throw BBEKitError.modelMismatch("output \"\(meta.probOutput)\" is missing or not a multi-array")
        }
        guard let offsetsArray = outputs.featureValue(for: meta.offsetsOutput)?.multiArrayValue else {
            throw BBEKitError.modelMismatch("output \"\(meta.offsetsOutput)\" is missing or not a multi-array")
        }
        var prob = try OutputMap(probArray, channels: 1, name: meta.probOutput)
        let offsets = try OutputMap(offsetsArray, channels: 4, name: meta.offsetsOutput)
        guard prob.height == offsets.height, prob.width == offsets.width else {
            throw BBEGrouperError.shapeMismatch("\(meta.probOutput) is \(prob.height) x \(prob.width) but "
                                                + "\(meta.offsetsOutput) is \(offsets.height) x \(offsets.width)")
        }
        if meta.probActivation == .sigmoid {
            prob.values.withUnsafeMutableBufferPointer { TensorCopy.applySigmoid($0) }
        }
        grouper.configuration = configuration.grouper ?? meta.grouper
        guard let state = tracker else {
            return try grouper.group(prob: prob.values, offsets: offsets.values, height: prob.height,
                                     width: prob.width, stride: meta.stride)
        }
        // Smoothing, grouping of the smoothed map and tracking (docs/tracker.md); content extent in cells.
        let rows = Double(prob.height)
        let (next, grouped, frame) = try Tracker.step(
            state, prob: prob.values, height: prob.height, width: prob.width,
            contentHeight: currentLetterbox.map { Double($0.contentHeight) * rows / Double($0.side) },
            contentWidth: currentLetterbox.map { Double($0.contentWidth) * rows / Double($0.side) }
        ) { smoothed in
            try grouper.group(prob: smoothed, offsets: offsets.values, height: prob.height, width: prob.width,
                              stride: meta.stride)
        }
        tracker = next
        trackedFrame = frame
        return grouped
    }

    private func milliseconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
    }
}
#endif
