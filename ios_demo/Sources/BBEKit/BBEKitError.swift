#if canImport(CoreML)
import BBEGrouper
import Foundation

/// Errors of the Core ML side of BBEKit (the grouper's own errors are ``BBEGrouperError``).
public enum BBEKitError: Error, LocalizedError {
    /// No model file at the URL, or not a `.mlpackage`, `.mlmodel` or `.mlmodelc`.
    case modelNotFound(String)
    /// The model lacks an input or output named in its `"bbe"` metadata, or it has an unexpected type.
    case modelMismatch(String)
    /// The image could not be letterboxed (zero size, no bitmap context, pixel buffer creation failed).
    case imageConversion(String)

    public var errorDescription: String? {
        switch self {
        case let .modelNotFound(message): return "model not found: \(message)"
        case let .modelMismatch(message): return "model does not match its metadata: \(message)"
        case let .imageConversion(message): return "image conversion failed: \(message)"
        }
    }
}
#endif
