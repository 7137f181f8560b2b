import Foundation

/// How instance boxes are made (docs/grouper.md): the paper's peak boxes, or boxes refined by the median or the mean
/// (``RefineStatistic``) of their cells' boxes (Grouper v2).
public enum GrouperMode: String, Equatable, Sendable, Codable {
    /// The paper's grouper: steps 1-5.
    case paper
    /// Steps 1-4, ``GrouperConfiguration/refineRounds`` refinement rounds (step 4b), then step 5.
    case refine
}

/// The per-coordinate statistic of a refined box over its cells' boxes (docs/grouper.md step 4b).
public enum RefineStatistic: String, Equatable, Sendable, Codable {
    /// The middle value, or the mean of the two middle values of an even count.
    case median
    /// The float64 sum of the cells' values in raster order, divided by their count.
    case mean
}

/// Thresholds, anchor and mode of the grouper (docs/grouper.md, "GrouperConfig").
///
/// Defaults are the paper's values; the model's `"bbe"` metadata overrides them
/// (see ``init(metadata:)`` and ``BBEModelMetadata``).
public struct GrouperConfiguration: Equatable, Sendable, Codable {
    /// Default anchor width in input pixels: `96 / sqrt(1.5)` (area 96², height/width = 1.5).
    public static let defaultAnchorW: Double = (96.0 * 96.0 / 1.5).squareRoot()
    /// Default anchor height in input pixels: `96 * sqrt(1.5)`.
    public static let defaultAnchorH: Double = (96.0 * 96.0 * 1.5).squareRoot()

    /// Minimum probability of a peak (seed box), non-strict.
    public var tC: Double
    /// NMS IoU threshold: a candidate is suppressed when its IoU with a kept box is `> tNms`.
    public var tNms: Double
    /// Minimum probability of a person cell, non-strict.
    public var tFg: Double
    /// Minimum IoU between a cell's box and its instance box, non-strict.
    public var tIou: Double
    /// Most instances kept.
    public var maxInstances: Int
    /// Anchor width, input pixels.
    public var anchorW: Double
    /// Anchor height, input pixels.
    public var anchorH: Double
    /// `dw` and `dh` are clamped to `[-maxLogScale, maxLogScale]` before `exp`.
    public var maxLogScale: Double
    /// The paper's boxes or refined ones.
    public var mode: GrouperMode
    /// Refinement rounds of mode ``GrouperMode/refine`` (>= 1; ignored in mode ``GrouperMode/paper``).
    public var refineRounds: Int
    /// The statistic of the refined boxes of mode ``GrouperMode/refine``.
    public var refineStatistic: RefineStatistic

    /// The metadata / golden-file key of each field, in the order of docs/grouper.md.
    public static let metadataKeys = ["t_c", "t_nms", "t_fg", "t_iou", "max_instances",
                                      "anchor_w", "anchor_h", "max_log_scale"]
    /// Keys of Grouper v2, optional: a file without them (written before) means `"paper"`, 1 round, `"median"`.
    public static let optionalMetadataKeys = ["mode", "refine_rounds", "refine_statistic"]

    enum CodingKeys: String, CodingKey {
        case tC = "t_c", tNms = "t_nms", tFg = "t_fg", tIou = "t_iou", maxInstances = "max_instances"
        case anchorW = "anchor_w", anchorH = "anchor_h", maxLogScale = "max_log_scale"
        case mode, refineRounds = "refine_rounds", refineStatistic = "refine_statistic"
    }

    /// Creates a configuration; every argument defaults to the value of docs/grouper.md.
    public init(tC: Double = 0.6, tNms: Double = 0.4, tFg: Double = 0.5, tIou: Double = 0.3,
                maxInstances: Int = 20, anchorW: Double = GrouperConfiguration.defaultAnchorW,
                anchorH: Double = GrouperConfiguration.defaultAnchorH, maxLogScale: Double = 4.0,
                mode: GrouperMode = .paper, refineRounds: Int = 1, refineStatistic: RefineStatistic = .median) {
        self.tC = tC
        self.tNms = tNms
        self.tFg = tFg
        self.tIou = tIou
        self.maxInstances = maxInstances
        self.anchorW = anchorW
        self.anchorH = anchorH
        self.maxLogScale = maxLogScale
        self.mode = mode
        self.refineRounds = refineRounds
        self.refineStatistic = refineStatistic
    }

    /// Decodes the keys of ``CodingKeys``; `mode`, `refine_rounds` and `refine_statistic` are optional (`.paper`, 1,
    /// `.median`), as in metadata.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(tC: try c.decode(Double.self, forKey: .tC), tNms: try c.decode(Double.self, forKey: .tNms),
                  tFg: try c.decode(Double.self, forKey: .tFg), tIou: try c.decode(Double.self, forKey: .tIou),
                  maxInstances: try c.decode(Int.self, forKey: .maxInstances),
                  anchorW: try c.decode(Double.self, forKey: .anchorW), anchorH: try c.decode(Double.self, forKey: .anchorH),
                  maxLogScale: try c.decode(Double.self, forKey: .maxLogScale),
                  mode: try c.decodeIfPresent(GrouperMode.self, forKey: .mode) ?? .paper,
                  refineRounds: try c.decodeIfPresent(Int.self, forKey: .refineRounds) ?? 1,
                  refineStatistic: try c.decodeIfPresent(RefineStatistic.self, forKey: .refineStatistic) ?? .median)
    }

    /// Reads the eight grouper keys (`t_c`, `t_nms`, `t_fg`, `t_iou`, `max_instances`, `anchor_w`,
    /// `anchor_h`, `max_log_scale`) and the optional `mode` (default `"paper"`), `refine_rounds` (default 1) and
    /// `refine_statistic` (default `"median"`) from a decoded `"bbe"` metadata object (or a golden case's `config`).
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` naming the first missing or mistyped key, then
    ///   ``BBEGrouperError/invalidConfiguration(_:)`` if a value is out of range.
    public init(metadata: [String: Any]) throws {
        let m = MetadataReader(metadata)
        self.init(tC: try m.double("t_c"), tNms: try m.double("t_nms"), tFg: try m.double("t_fg"),
                  tIou: try m.double("t_iou"), maxInstances: try m.int("max_instances"),
                  anchorW: try m.double("anchor_w"), anchorH: try m.double("anchor_h"),
                  maxLogScale: try m.double("max_log_scale"))
        if metadata["mode"] != nil {
            let name = try m.string("mode")
            guard let parsed = GrouperMode(rawValue: name) else {
                throw BBEGrouperError.badMetadata("key \"mode\" must be \"paper\" or \"refine\", got \(name.debugDescription)")
            }
            mode = parsed
        }
        if metadata["refine_rounds"] != nil {
            refineRounds = try m.int("refine_rounds")
        }
        if metadata["refine_statistic"] != nil {
            let name = try m.string("refine_statistic")
            guard let parsed = RefineStatistic(rawValue: name) else {
                throw BBEGrouperError.badMetadata(
                    "key \"refine_statistic\" must be \"median\" or \"mean\", got \(name.debugDescription)")
            }
            refineStatistic = parsed
        }
        try validate()
    }

    /// Parses a `"bbe"` metadata JSON string (docs/metadata.md) and reads the grouper keys from it.
    ///
    /// - Throws: ``BBEGrouperError/badMetadata(_:)`` if the string is not a JSON object or a key is missing.
    public init(metadataJSON: String) throws {
        try self.init(metadata: try MetadataReader.object(fromJSON: metadataJSON))
    }

    /// Checks the ranges of docs/grouper.md, "Validation": thresholds in `[0, 1]`, `maxInstances >= 0`,
    /// anchor and clamp finite and `> 0`, `refineRounds >= 1`.
    ///
    /// - Throws: ``BBEGrouperError/invalidConfiguration(_:)`` naming the field.
    public func validate() throws {
        for (name, value) in [("t_c", tC), ("t_nms", tNms), ("t_fg", tFg), ("t_iou", tIou)] {
            guard value >= 0, value <= 1 else {
                throw BBEGrouperError.invalidConfiguration("\(name) must be in [0, 1], got \(value)")
            }
        }
        guard maxInstances >= 0 else {
            throw BBEGrouperError.invalidConfiguration("max_instances must be >= 0, got \(maxInstances)")
        }
        for (name, value) in [("anchor_w", anchorW), ("anchor_h", anchorH), ("max_log_scale", maxLogScale)] {
            guard value.isFinite, value > 0 else {
                throw BBEGrouperError.invalidConfiguration("\(name) must be finite and > 0, got \(value)")
            }
        }
        guard refineRounds >= 1 else {
            throw BBEGrouperError.invalidConfiguration("refine_rounds must be >= 1, got \(refineRounds)")
        }
    }
}
