/// An axis-aligned box `x1, y1, x2, y2` (pixel `k` spans `[k, k + 1)`).
public struct Box: Equatable, Sendable, Codable {
    public var x1: Float
    public var y1: Float
    public var x2: Float
    public var y2: Float

    public init(x1: Float, y1: Float, x2: Float, y2: Float) {
        self.x1 = x1
        self.y1 = y1
        self.x2 = x2
        self.y2 = y2
    }

    /// `[x1, y1, x2, y2]`.
    public var array: [Float] { [x1, y1, x2, y2] }
    public var width: Float { x2 - x1 }
    public var height: Float { y2 - y1 }
}

/// The grouper's output (docs/grouper.md, "Output").
public struct GrouperResult: Equatable, Sendable {
    /// Rows of the label map (the model's output height `H`).
    public var height: Int
    /// Columns of the label map (`W`).
    public var width: Int
    /// `H * W` labels, row-major: 0 = background, `k` = the k-th instance (1...M).
    public var labels: [Int32]
    /// `M` instance boxes (the kept peak boxes), input pixels, never clipped.
    public var boxes: [Box]
    /// `M` scores: the mean probability of each instance's cells.
    public var scores: [Float]

    public init(height: Int, width: Int, labels: [Int32], boxes: [Box], scores: [Float]) {
        self.height = height
        self.width = width
        self.labels = labels
        self.boxes = boxes
        self.scores = scores
    }

    /// Number of instances `M`.
    public var count: Int { scores.count }

    /// A result with no instance on an `height x width` map.
    public static func empty(height: Int, width: Int) -> GrouperResult {
        GrouperResult(height: height, width: width, labels: [Int32](repeating: 0, count: height * width),
                      boxes: [], scores: [])
    }
}
