import BBEGrouper
import Foundation

/// One golden tracking sequence of `tests/golden/` (format written by `bbe_mobile/golden_tracking.py`): per frame
/// the grouper input and the expected smoothed map, labels, IDs, main person and scene change.
public struct GoldenTrackingSequence: Sendable {
    /// The expected tracker output of one frame.
    public struct Expected: Sendable {
        public var ids: [Int32]
        public var mainId: Int
        public var sceneChange: Bool
    }

    public var name: String
    public var frames: Int
    public var height: Int
    public var width: Int
    public var stride: Double
    public var contentHeight: Double
    public var contentWidth: Double
    public var grouper: GrouperConfiguration
    public var tracker: TrackerConfiguration
    /// `frames * height * width` (offsets: `* 4`) values, frame after frame.
    public var prob: [Float]
    public var offsets: [Float]
    public var smoothed: [Float]
    public var labels: [Int32]
    public var expected: [Expected]

    /// Sequence names listed in `tracking.json`.
    public static func names(in directory: URL) throws -> [String] {
        let object = try GoldenCase.readJSON(directory.appendingPathComponent("tracking.json"))
        guard let names = object["sequences"] as? [String] else {
            throw GoldenError("\(directory.path)/tracking.json has no \"sequences\" list of strings")
        }
        return try names.map { try GoldenCase.plainName($0, "\(directory.path)/tracking.json sequences") }
    }

    /// Reads sequence `name` from `directory`.
    ///
    /// - Throws: ``GoldenError`` naming the file for every problem.
    public init(name: String, directory: URL) throws {
        let what = "\(directory.path)/\(name).json"
        let doc = try GoldenCase.readJSON(directory.appendingPathComponent("\(name).json"))
        let m = MetadataReader(doc)
        do {
            self.name = name
            frames = try m.int("frames")
            height = try m.int("height")
            width = try m.int("width")
            stride = try m.double("stride")
            contentHeight = try m.double("content_height")
            contentWidth = try m.double("content_width")
            guard let g = doc["grouper"] as? [String: Any], let t = doc["tracker"] as? [String: Any] else {
                throw GoldenError("\(what): no \"grouper\" or \"tracker\" object")
            }
            grouper = try GrouperConfiguration(metadata: g)
            tracker = try TrackerConfiguration(metadata: t)
        } catch let error as BBEGrouperError {
            throw GoldenError("\(what): \(error.description)")
        }
        guard (0...10_000).contains(frames) else { throw GoldenError("\(what): frames must be in 0...10000") }
        let cells = try GoldenCase.cellCount(height, width, what) * frames
        func file(_ key: String) throws -> String {
            guard let f = doc[key] as? String else { throw GoldenError("\(what): no \"\(key)\"") }
            return f
        }
        prob = try GoldenCase.readRaw(directory, try file("prob_file"), count: cells, as: Float.self)
        offsets = try GoldenCase.readRaw(directory, try file("offsets_file"), count: cells * 4, as: Float.self)
        smoothed = try GoldenCase.readRaw(directory, try file("smoothed_file"), count: cells, as: Float.self)
        labels = try GoldenCase.readRaw(directory, try file("labels_file"), count: cells, as: Int32.self)
        guard let records = doc["expected"] as? [[String: Any]], records.count == frames else {
            throw GoldenError("\(what): \"expected\" must hold one object per frame")
        }
        expected = try records.map { record in
            guard let ids = record["ids"] as? [NSNumber], let main = record["main_id"] as? NSNumber,
                  let scene = record["scene_change"] as? Bool else {
                throw GoldenError("\(what): an \"expected\" record lacks ids, main_id or scene_change")
            }
            return Expected(ids: ids.map { Int32(truncating: $0) }, mainId: main.intValue, sceneChange: scene)
        }
    }

    /// Frame `t`'s slice of a per-frame array of `perFrame` values.
    public func frame<T>(_ values: [T], _ t: Int, perFrame: Int) -> [T] {
        Array(values[(t * perFrame)..<((t + 1) * perFrame)])
    }
}
