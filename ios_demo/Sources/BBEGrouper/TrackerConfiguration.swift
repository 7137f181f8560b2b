import Foundation

/// Parameters of the video tracker (docs/tracker.md, "Configuration: TrackerConfig"); every default is the
/// documented one.
public struct TrackerConfiguration: Equatable, Sendable {
    /// Weight of the new frame in the exponential average of `prob`, in `(0, 1]` (1: no smoothing).
    public var smoothing: Double
    /// Scene-change threshold on the Jaccard distance of consecutive semantic masks, in `[0, 1]`.
    public var tScene: Double
    /// Person threshold of the scene measure, in `[0, 1]`.
    public var tFg: Double
    /// Minimum mask IoU of a track and a detection, in `(0, 1]`.
    public var tMatch: Double
    /// Consecutive matched frames before a track is confirmed and gets an ID (>= 1).
    public var minHits: Int
    /// Frames a confirmed track survives without a match (>= 0).
    public var maxAge: Int
    /// Main-person weights of the area, centrality and age terms (>= 0).
    public var wArea: Double
    public var wCenter: Double
    public var wAge: Double
    /// Track age (frames) at which the age term saturates (>= 1).
    public var ageFrames: Int
    /// A challenger must score more than the main person plus this margin (>= 0) ...
    public var switchMargin: Double
    /// ... for this many consecutive frames (>= 1).
    public var switchFrames: Int

    public init(smoothing: Double = 0.6, tScene: Double = 0.6, tFg: Double = 0.5, tMatch: Double = 0.2,
                minHits: Int = 3, maxAge: Int = 15, wArea: Double = 1.0, wCenter: Double = 0.5, wAge: Double = 0.25,
                ageFrames: Int = 30, switchMargin: Double = 0.1, switchFrames: Int = 10) {
        self.smoothing = smoothing
        self.tScene = tScene
        self.tFg = tFg
        self.tMatch = tMatch
        self.minHits = minHits
        self.maxAge = maxAge
        self.wArea = wArea
        self.wCenter = wCenter
        self.wAge = wAge
        self.ageFrames = ageFrames
        self.switchMargin = switchMargin
        self.switchFrames = switchFrames
    }

    /// Reads the twelve keys of a golden sequence's `tracker` object (snake case, as `TrackerConfig` in Python).
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` for a missing or mistyped key, then
    ///   ``BBEGrouperError/invalidConfiguration(_:)`` for a value out of range.
    public init(metadata: [String: Any]) throws {
        let m = MetadataReader(metadata)
        self.init(smoothing: try m.double("smoothing"), tScene: try m.double("t_scene"), tFg: try m.double("t_fg"),
                  tMatch: try m.double("t_match"), minHits: try m.int("min_hits"), maxAge: try m.int("max_age"),
                  wArea: try m.double("w_area"), wCenter: try m.double("w_center"), wAge: try m.double("w_age"),
                  ageFrames: try m.int("age_frames"), switchMargin: try m.double("switch_margin"),
                  switchFrames: try m.int("switch_frames"))
        try validate()
    }

    /// Checks every range of docs/tracker.md.
    ///
    /// - Throws: ``BBEGrouperError/invalidConfiguration(_:)`` naming the field.
    public func validate() throws {
        func fail(_ message: String) -> BBEGrouperError { .invalidConfiguration("TrackerConfig.\(message)") }
        guard smoothing.isFinite, smoothing > 0, smoothing <= 1 else { throw fail("smoothing must be in (0, 1], got \(smoothing)") }
        guard tMatch.isFinite, tMatch > 0, tMatch <= 1 else { throw fail("t_match must be in (0, 1], got \(tMatch)") }
        for (name, value) in [("t_scene", tScene), ("t_fg", tFg)] {
            guard value.isFinite, value >= 0, value <= 1 else { throw fail("\(name) must be in [0, 1], got \(value)") }
        }
        for (name, value) in [("w_area", wArea), ("w_center", wCenter), ("w_age", wAge), ("switch_margin", switchMargin)] {
            guard value.isFinite, value >= 0 else { throw fail("\(name) must be finite and >= 0, got \(value)") }
        }
        for (name, value, low) in [("min_hits", minHits, 1), ("max_age", maxAge, 0), ("age_frames", ageFrames, 1),
                                   ("switch_frames", switchFrames, 1)] {
            guard value >= low else { throw fail("\(name) must be an integer >= \(low), got \(value)") }
        }
    }
}
