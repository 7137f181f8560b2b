#if canImport(CoreML)
import BBEGrouper
import CoreML
import Foundation

/// A loaded BBE Core ML model and its `"bbe"` metadata (docs/metadata.md).
public struct BBEModel {
    /// The Core ML model.
    public let model: MLModel
    /// The metadata read from `modelDescription.metadata[.creatorDefinedKey]["bbe"]`.
    public let metadata: BBEModelMetadata
    /// File name of the model (for benchmark results).
    public let name: String
    /// Compute units the model was loaded with.
    public let computeUnits: MLComputeUnits

    /// Wraps an already loaded model, reading its metadata.
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` if the model has no valid `"bbe"` entry.
    public init(model: MLModel, name: String, computeUnits: MLComputeUnits) throws {
        self.model = model
        self.name = name
        self.computeUnits = computeUnits
        metadata = try BBEModel.metadata(of: model)
    }

    /// Reads the `"bbe"` JSON of a Core ML model's creator-defined (user-defined) metadata.
    public static func metadata(of model: MLModel) throws -> BBEModelMetadata {
        let raw = model.modelDescription.metadata[MLModelMetadataKey.creatorDefinedKey]
        guard let creatorDefined = raw as? [String: String] else {
            throw BBEGrouperError.badMetadata(
                "missing key \"bbe\": the model has no user-defined metadata (was it exported by `bbe-mobile convert`?)")
        }
        return try BBEModelMetadata(creatorDefined: creatorDefined)
    }

    /// Loads a model from `url`: a compiled `.mlmodelc` directly, an `.mlpackage` or `.mlmodel` after
    /// compiling it (the compiled copy is cached next to the app's caches and reused while the source is unchanged).
    public static func load(contentsOf url: URL, computeUnits: MLComputeUnits = .all) async throws -> BBEModel {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BBEKitError.modelNotFound(url.path)
        }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let compiledURL: URL
        switch url.pathExtension.lowercased() {
        case "mlmodelc":
            compiledURL = url
        case "mlpackage", "mlmodel":
            compiledURL = try await compiled(url)
        default:
            throw BBEKitError.modelNotFound("\(url.lastPathComponent) is not an .mlpackage, .mlmodel or .mlmodelc")
        }
        let model = try await MLModel.load(contentsOf: compiledURL, configuration: configuration)
        return try BBEModel(model: model, name: url.deletingPathExtension().lastPathComponent + "."
                            + (url.pathExtension.isEmpty ? "mlmodelc" : url.pathExtension),
                            computeUnits: computeUnits)
    }

    /// The first compiled model in `bundle` (Xcode compiles an `.mlpackage` added to the app target into
    /// `NAME.mlmodelc`), or the one called `name`.
    public static func loadBundled(named name: String? = nil, bundle: Bundle = .main,
                                   computeUnits: MLComputeUnits = .all) async throws -> BBEModel {
        let url: URL?
        if let name {
            url = bundle.url(forResource: name, withExtension: "mlmodelc")
        } else {
            url = bundle.urls(forResourcesWithExtension: "mlmodelc", subdirectory: nil)?
                .sorted { $0.lastPathComponent < $1.lastPathComponent }.first
        }
        guard let url else {
            throw BBEKitError.modelNotFound(
                "no \(name.map { "\($0).mlmodelc" } ?? ".mlmodelc") in the app bundle: add the .mlpackage written by "
                + "`bbe-mobile convert --target coreml` to the app target")
        }
        return try await load(contentsOf: url, computeUnits: computeUnits)
    }

    private static func compiled(_ source: URL) async throws -> URL {
        let fm = FileManager.default
        let caches = try fm.url(for: .cachesDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("BBEKit", isDirectory: true)
        try fm.createDirectory(at: caches, withIntermediateDirectories: true)
        let modified = (try? fm.attributesOfItem(atPath: source.path)[.modificationDate] as? Date)?
            .timeIntervalSince1970 ?? 0
        let cached = caches.appendingPathComponent(
            "\(source.deletingPathExtension().lastPathComponent)-\(Int(modified)).mlmodelc", isDirectory: true)
        if fm.fileExists(atPath: cached.path) {
            return cached
        }
        let temporary = try await MLModel.compileModel(at: source)
        try? fm.removeItem(at: cached)
        try fm.moveItem(at: temporary, to: cached)
        return cached
    }
}

extension MLComputeUnits {
    /// Name used in benchmark results (`"all"`, `"cpu_only"`, `"cpu_and_gpu"`, `"cpu_and_ne"`).
    public var benchName: String {
        switch self {
        case .cpuOnly: return "cpu_only"
        case .cpuAndGPU: return "cpu_and_gpu"
        case .all: return "all"
        case .cpuAndNeuralEngine: return "cpu_and_ne"
        @unknown default: return "unknown"
        }
    }
}
#endif
