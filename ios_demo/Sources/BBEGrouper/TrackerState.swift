/// One track of docs/tracker.md: `id` (0 while tentative), consecutive `hits` and `misses`, `age` (frames since
/// birth) and `mask`, the flat raster indices (ascending) of its last matched cells.
public struct Track: Equatable, Sendable {
    public var id: Int
    public var hits: Int
    public var misses: Int
    public var age: Int
    public var mask: [Int32]
}

/// Everything one video stream carries from frame to frame; `TrackerState()` starts a new video.
public struct TrackerState: Equatable, Sendable {
    /// The last smoothed probability map (`smoothedHeight * smoothedWidth`, row-major), `nil` before the first frame.
    public var smoothed: [Float]? = nil
    public var smoothedHeight = 0
    public var smoothedWidth = 0
    /// Tracks in creation order, and the map shape their masks refer to.
    public var tracks: [Track] = []
    public var height = -1
    public var width = -1
    public var nextId = 1
    public var mainId = 0
    public var challengerId = 0
    public var challengerFrames = 0

    public init() {}
}

/// One frame's tracker output: `ids` per grouper instance (0: a tentative track), `mainId` (0: none) and whether
/// the smoothing was reset by a scene change.
public struct TrackedFrame: Equatable, Sendable {
    public var ids: [Int32]
    public var mainId: Int
    public var sceneChange: Bool
}
