import BBEGrouper
import Foundation

/// One golden grouper case of `tests/golden/` (format written by `bbe_mobile/golden.py`): the inputs, the
/// configuration and the expected outputs. Used by the tests and by `bbe-grouper-bench`, which read the
/// files in place (no copies that can drift).
public struct GoldenCase: Sendable {
    /// The optional `"image"` block: letterbox upsampling check.
    public struct Image: Sendable {
        public var height: Int
        public var width: Int
        public var scale: Double
        /// Expected `height * width` labels of the original image.
        public var labels: [Int32]
        /// Expected boxes in original-image pixels.
        public var boxes: [[Double]]
    }

    public var name: String
    public var description: String
    public var height: Int
    public var width: Int
    public var stride: Double
    public var configuration: GrouperConfiguration
    public var prob: [Float]
    public var offsets: [Float]
    /// Expected `height * width` labels.
    public var labels: [Int32]
    /// Expected boxes, `x1, y1, x2, y2` input pixels.
    public var boxes: [[Double]]
    /// Expected scores.
    public var scores: [Double]
    /// Absolute tolerance on boxes and scores.
    public var tolerance: Double
    /// Number of synthetic people of a benchmark case, `nil` for the other cases.
    public var benchPeople: Int?
    public var image: Image?

    /// The golden directory of this checkout: `$BBE_GOLDEN_DIR` if set, else `../tests/golden` relative to the
    /// package (found from this source file's path).
    public static func defaultDirectory(filePath: String = #filePath) -> URL {
        if let env = ProcessInfo.processInfo.environment["BBE_GOLDEN_DIR"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        // <repo>/ios_demo/Sources/BBEGolden/GoldenCase.swift -> <repo>/tests/golden
        return URL(fileURLWithPath: filePath)
            .deletingLastPathComponent()  // BBEGolden
            .deletingLastPathComponent()  // Sources
            .deletingLastPathComponent()  // ios_demo
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("tests/golden", isDirectory: true)
    }

    /// Case names listed in `index.json`.
    public static func caseNames(in directory: URL) throws -> [String] {
        let object = try readJSON(directory.appendingPathComponent("index.json"))
        guard let cases = object["cases"] as? [String] else {
            throw GoldenError("\(directory.path)/index.json has no \"cases\" list of strings")
        }
        return try cases.map { try plainName($0, "\(directory.path)/index.json cases") }
    }

    /// Every case of `index.json`, in order.
    public static func loadAll(from directory: URL) throws -> [GoldenCase] {
        try caseNames(in: directory).map { try GoldenCase(name: $0, directory: directory) }
    }

    /// Reads case `name` from `directory`.
    ///
    /// - Throws: ``GoldenError`` naming the file (and the key) for every problem, including bad metadata keys.
    public init(name: String, directory: URL) throws {
        do {
            try self.init(parsing: name, directory: directory)
        } catch let error as BBEGrouperError {
            throw GoldenError("\(directory.appendingPathComponent("\(name).json").path): \(error.description)")
        }
    }

    private init(parsing name: String, directory: URL) throws {
        let doc = try GoldenCase.readJSON(directory.appendingPathComponent("\(name).json"))
        let m = MetadataReader(doc)
        self.name = name
        description = (doc["description"] as? String) ?? ""
        height = try m.int("height")
        width = try m.int("width")
        stride = try m.double("stride")
        guard let config = doc["config"] as? [String: Any] else { throw GoldenError("\(name).json: no \"config\" object") }
        configuration = try GrouperConfiguration(metadata: config)
        tolerance = try m.double("tolerance")
        benchPeople = doc["bench_people"] is NSNull ? nil : (try? m.int("bench_people"))
        boxes = try GoldenCase.matrix(doc["boxes"], "\(name).json boxes")
        guard let s = doc["scores"] as? [Any] else { throw GoldenError("\(name).json: no \"scores\"") }
        scores = try s.map {
            guard let v = ($0 as? NSNumber)?.doubleValue ?? ($0 as? Double) else { throw GoldenError("\(name).json: bad score") }
            return v
        }
        let cells = try GoldenCase.cellCount(height, width, "\(name).json")
        prob = try GoldenCase.readRaw(directory, (doc["prob_file"] as? String) ?? "\(name).prob.f32", count: cells, as: Float.self)
        offsets = try GoldenCase.readRaw(directory, (doc["offsets_file"] as? String) ?? "\(name).offsets.f32",
                                         count: cells * 4, as: Float.self)
        labels = try GoldenCase.readRaw(directory, (doc["labels_file"] as? String) ?? "\(name).labels.i32",
                                        count: cells, as: Int32.self)
        if let block = doc["image"] as? [String: Any] {
            let im = MetadataReader(block)
            let h0 = try im.int("height"), w0 = try im.int("width")
            image = Image(height: h0, width: w0, scale: try im.double("scale"),
                          labels: try GoldenCase.readRaw(directory, try im.string("labels_file"), count: try GoldenCase.cellCount(h0, w0, "\(name).json image"), as: Int32.self),
                          boxes: try GoldenCase.matrix(block["boxes"], "\(name).json image.boxes"))
        } else {
            image = nil
        }
    }

    /// Largest height or width of a case, in cells (`MAX_GOLDEN_SIDE` of `bbe_mobile/golden.py`; 0 is allowed).
    public static let maxSide = 4096

    /// `height * width` for sizes in `0...maxSide`.
    static func cellCount(_ height: Int, _ width: Int, _ what: String) throws -> Int {
        guard (0...maxSide).contains(height), (0...maxSide).contains(width) else {
            throw GoldenError("\(what): height \(height) x width \(width) must both be integers in 0...\(maxSide)")
        }
        return height * width
    }

    /// `name` if it names a file inside the golden directory (not empty, not `.` or `..`, no separators or control
    /// characters).
    static func plainName(_ name: String, _ what: String) throws -> String {
        let bad = name.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.value < 0x20 }
        guard !name.isEmpty, name != ".", name != "..", !bad else {
            throw GoldenError("\(what): \(name.debugDescription) is not a file name inside the golden directory")
        }
        return name
    }

    static func readJSON(_ url: URL) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GoldenError("cannot read \(url.path): \(error.localizedDescription)")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw GoldenError("\(url.path) is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = parsed as? [String: Any] else {
            throw GoldenError("\(url.path) is not a JSON object")
        }
        return object
    }

    /// Boxes: a list of rows of 4 numbers.
    static func matrix(_ raw: Any?, _ what: String) throws -> [[Double]] {
        guard let rows = raw as? [Any] else { throw GoldenError("\(what): not a list") }
        return try rows.map { row in
            guard let values = row as? [Any], values.count == 4 else { throw GoldenError("\(what): not a list of 4-number boxes") }
            return try values.map {
                guard let v = ($0 as? NSNumber)?.doubleValue ?? ($0 as? Double) else { throw GoldenError("\(what): not a number") }
                return v
            }
        }
    }

    /// Reads `count` little-endian values of a raw file.
    static func readRaw<T: FixedWidthInteger>(_ directory: URL, _ file: String, count: Int, as: T.Type) throws -> [T] {
        let data = try rawData(directory, file, bytes: count * MemoryLayout<T>.size)
        return data.withUnsafeBytes { raw in
            (0..<count).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
    }

    static func readRaw(_ directory: URL, _ file: String, count: Int, as: Float.Type) throws -> [Float] {
        let bits = try readRaw(directory, file, count: count, as: UInt32.self)
        return bits.map { Float(bitPattern: $0) }
    }

    static func rawData(_ directory: URL, _ file: String, bytes: Int) throws -> Data {
        let url = directory.appendingPathComponent(try plainName(file, "\(directory.path) data file"))
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GoldenError("cannot read \(url.path): \(error.localizedDescription)")
        }
        guard data.count == bytes else {
            throw GoldenError("\(url.path) has \(data.count) bytes, expected \(bytes)")
        }
        return data
    }
}

/// A malformed or missing golden file.
public struct GoldenError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
