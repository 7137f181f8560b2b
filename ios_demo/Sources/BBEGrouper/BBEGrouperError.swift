// Errors thrown by the grouper, the metadata parser and the tensor helpers.

/// An error raised by ``BBEGrouper`` and its helpers. Every case carries a message meant for people:
/// it names the offending array, key or field.
public enum BBEGrouperError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An input buffer contains NaN or ±infinity. `array` is `"prob"` or `"offsets"`.
    case nonFinite(array: String, index: Int)
    /// Buffer sizes or shapes disagree with the declared height/width (or tensor shape).
    case shapeMismatch(String)
    /// A ``GrouperConfiguration`` field, the stride or a letterbox parameter is out of range.
    case invalidConfiguration(String)
    /// The model's `"bbe"` metadata (docs/metadata.md) is missing, is not JSON, lacks a key or has a bad value.
    case badMetadata(String)

    /// A readable explanation of the error.
    public var description: String {
        switch self {
        case let .nonFinite(array, index):
            return "\(array) contains NaN or inf (first at flat index \(index))"
        case let .shapeMismatch(message):
            return "shape mismatch: \(message)"
        case let .invalidConfiguration(message):
            return "invalid configuration: \(message)"
        case let .badMetadata(message):
            return "bad model metadata: \(message)"
        }
    }
}

#if canImport(Foundation)
import Foundation

extension BBEGrouperError: LocalizedError {
    public var errorDescription: String? { description }
}
#endif
