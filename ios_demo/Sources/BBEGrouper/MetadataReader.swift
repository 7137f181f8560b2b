import Foundation

/// Typed access to a decoded JSON object with errors that name the key (docs/metadata.md).
///
/// Works with the output of `JSONSerialization` on Apple platforms and on Linux (numbers arrive as
/// `NSNumber`, `Int` or `Double` depending on the platform).
public struct MetadataReader {
    /// The decoded JSON object.
    public let object: [String: Any]

    /// Wraps a decoded JSON object.
    public init(_ object: [String: Any]) {
        self.object = object
    }

    /// Decodes `json` (UTF-8 text) as a JSON object.
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` if the text is not JSON or not an object.
    public static func object(fromJSON json: String) throws -> [String: Any] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [])
        } catch {
            throw BBEGrouperError.badMetadata("the \"bbe\" metadata is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = parsed as? [String: Any] else {
            throw BBEGrouperError.badMetadata("the \"bbe\" metadata must be a JSON object")
        }
        return object
    }

    /// The raw value of `key`.
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` `missing key "KEY"` when absent.
    public func value(_ key: String) throws -> Any {
        guard let value = object[key] else {
            throw BBEGrouperError.badMetadata("missing key \"\(key)\"")
        }
        return value
    }

    /// `true` if `key` is present and JSON `null`.
    public func isNull(_ key: String) -> Bool {
        object[key] is NSNull
    }

    /// A number (integer or floating point) as `Double`.
    public func double(_ key: String) throws -> Double {
        let raw = try value(key)
        if let number = MetadataReader.number(raw) {
            return number
        }
        throw BBEGrouperError.badMetadata("key \"\(key)\" must be a number, got \(MetadataReader.show(raw))")
    }

    /// An integral number as `Int` (`20` and `20.0` are accepted, `20.5` is not).
    public func int(_ key: String) throws -> Int {
        let raw = try value(key)
        if let d = MetadataReader.number(raw), d.isFinite, d.rounded() == d, abs(d) < 1e15 {
            return Int(d)
        }
        throw BBEGrouperError.badMetadata("key \"\(key)\" must be an integer, got \(MetadataReader.show(raw))")
    }

    /// A string.
    public func string(_ key: String) throws -> String {
        let raw = try value(key)
        guard let s = raw as? String else {
            throw BBEGrouperError.badMetadata("key \"\(key)\" must be a string, got \(MetadataReader.show(raw))")
        }
        return s
    }

    /// An array of numbers.
    public func doubles(_ key: String) throws -> [Double] {
        let raw = try value(key)
        guard let array = raw as? [Any] else {
            throw BBEGrouperError.badMetadata("key \"\(key)\" must be an array of numbers, got \(MetadataReader.show(raw))")
        }
        return try array.map { element in
            guard let d = MetadataReader.number(element) else {
                throw BBEGrouperError.badMetadata("key \"\(key)\" must be an array of numbers, got \(MetadataReader.show(raw))")
            }
            return d
        }
    }

    /// `nil` for JSON `null`, else an array of numbers (the key itself must be present).
    public func optionalDoubles(_ key: String) throws -> [Double]? {
        _ = try value(key)
        return isNull(key) ? nil : try doubles(key)
    }

    /// A one-line description of a JSON value for error messages: strings quoted and escaped, containers named.
    static func show(_ raw: Any) -> String {
        switch raw {
        case let s as String: return s.debugDescription
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        default: return "\(raw)".split(whereSeparator: \.isNewline).joined(separator: " ")
        }
    }

    static func number(_ raw: Any) -> Double? {
        if raw is String || raw is NSNull { return nil }
        if let d = raw as? Double { return d }
        if let i = raw as? Int { return Double(i) }
        if let n = raw as? NSNumber { return n.doubleValue }
        return nil
    }
}
