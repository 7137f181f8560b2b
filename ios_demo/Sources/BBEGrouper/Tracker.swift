/// The video tracker of docs/tracker.md: smoothing of the person probability with a scene-change reset, stable
/// person IDs by mask IoU at model stride, and the main person with hysteresis. Every step is a pure function
/// `(state, this frame) -> (state, output)`; arithmetic follows the spec's order in `Double` and integers, so the
/// results equal Python's and Kotlin's bit for bit.
///
/// ```swift
/// var state = TrackerState()
/// let (next, instances, frame) = try Tracker.step(state, prob: prob, height: h, width: w) { smoothed in
///     try grouper.group(prob: smoothed, offsets: offsets, height: h, width: w, stride: stride)
/// }
/// state = next   // frame.ids[k] is instance k+1's ID, frame.mainId the main person
/// ```
public enum Tracker {
    /// Step 1: the new smoothed map (`height * width`) and whether a scene change reset it.
    ///
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` or ``BBEGrouperError/nonFinite(array:index:)``.
    public static func smooth(_ state: TrackerState, prob: [Float], height: Int, width: Int,
                              configuration: TrackerConfiguration) throws -> (smoothed: [Float], sceneChange: Bool) {
        guard height >= 0, width >= 0, prob.count == height * width else {
            throw BBEGrouperError.shapeMismatch("prob has \(prob.count) values, expected \(height) x \(width)")
        }
        if let bad = prob.firstIndex(where: { !$0.isFinite }) { throw BBEGrouperError.nonFinite(array: "prob", index: bad) }
        guard let previous = state.smoothed, state.smoothedHeight == height, state.smoothedWidth == width else {
            return (prob, true)
        }
        var inter = 0, union = 0
        let threshold = configuration.tFg
        for i in 0..<prob.count {
            let was = Double(previous[i]) >= threshold, now = Double(prob[i]) >= threshold
            if was && now { inter += 1 }
            if was || now { union += 1 }
        }
        if union > 0 && Double(union - inter) > configuration.tScene * Double(union) { return (prob, true) }
        let a = configuration.smoothing
        var out = [Float](repeating: 0, count: prob.count)
        for i in 0..<prob.count {
            let p0 = Double(previous[i])
            out[i] = Float(p0 + a * (Double(prob[i]) - p0))
        }
        return (out, false)
    }

    /// Steps 2-4 on this frame's grouper `labels` (`height * width`, instances `1...M`): the new state (its
    /// smoothed map unchanged) and the frame's IDs and main person. `contentHeight`/`contentWidth`: the map
    /// extent that shows the image, in cells (default: the whole map).
    ///
    /// - Throws: ``BBEGrouperError`` for bad sizes, negative labels, a bad content extent or configuration.
    public static func update(_ state: TrackerState, labels: [Int32], height: Int, width: Int,
                              contentHeight: Double? = nil, contentWidth: Double? = nil,
                              configuration: TrackerConfiguration = TrackerConfiguration()) throws
        -> (state: TrackerState, frame: TrackedFrame) {
        try configuration.validate()
        guard height >= 0, width >= 0, labels.count == height * width else {
            throw BBEGrouperError.shapeMismatch("labels has \(labels.count) values, expected \(height) x \(width)")
        }
        for value in [contentHeight, contentWidth].compactMap({ $0 }) where !(value.isFinite && value > 0) {
            throw BBEGrouperError.invalidConfiguration("content_hw must be finite and > 0, got \(value)")
        }
        let ch = contentHeight ?? Double(height), cw = contentWidth ?? Double(width)  // default: the whole map
        var detections = 0
        for label in labels {
            guard label >= 0 else { throw BBEGrouperError.shapeMismatch("labels must be >= 0, got \(label)") }
            detections = max(detections, Int(label))
        }
        var cells = [[Int32]](repeating: [], count: detections + 1)
        for (i, label) in labels.enumerated() where label > 0 { cells[Int(label)].append(Int32(i)) }

        let tracks = state.height == height && state.width == width ? state.tracks : []
        let taken = associate(tracks, labels: labels, cells: cells, tMatch: configuration.tMatch)

        var next = state
        var survivors: [Track] = []
        var owner = [Int](repeating: -1, count: detections + 1)
        for (k, old) in tracks.enumerated() {
            var track = old
            if let d = taken[k] {
                track.hits += 1
                track.misses = 0
                if track.id == 0 && track.hits >= configuration.minHits {
                    track.id = next.nextId
                    next.nextId += 1
                }
                track.mask = cells[d]
                owner[d] = survivors.count
            } else {
                if track.id == 0 || track.misses + 1 > configuration.maxAge { continue }
                track.hits = 0
                track.misses += 1
            }
            track.age += 1
            survivors.append(track)
        }
        if detections > 0 {
            for d in 1...detections where owner[d] < 0 && !cells[d].isEmpty {
                var id = 0
                if configuration.minHits <= 1 {
                    id = next.nextId
                    next.nextId += 1
                }
                owner[d] = survivors.count
                survivors.append(Track(id: id, hits: 1, misses: 0, age: 0, mask: cells[d]))
            }
        }
        let ids: [Int32] = detections > 0 ? (1...detections).map { owner[$0] >= 0 ? Int32(survivors[owner[$0]].id) : 0 } : []

        var leader = 0, leaderScore = 0.0, mainPersonScore = 0.0
        for track in survivors where track.id != 0 && track.misses == 0 {
            let score = mainScore(track, width: width, contentHeight: ch, contentWidth: cw, configuration: configuration)
            if leader == 0 || score > leaderScore || (score == leaderScore && track.id < leader) {
                leader = track.id
                leaderScore = score
            }
            if track.id == state.mainId { mainPersonScore = score }
        }
        next.challengerId = 0
        next.challengerFrames = 0
        if !survivors.contains(where: { $0.id != 0 && $0.id == state.mainId }) {
            next.mainId = leader
        } else if leader != 0 && leader != state.mainId && leaderScore > mainPersonScore + configuration.switchMargin {
            next.challengerFrames = leader == state.challengerId ? state.challengerFrames + 1 : 1
            next.challengerId = leader
            if next.challengerFrames >= configuration.switchFrames {
                next.mainId = leader
                next.challengerId = 0
                next.challengerFrames = 0
            }
        }
        next.tracks = survivors
        next.height = height
        next.width = width
        return (next, TrackedFrame(ids: ids, mainId: next.mainId, sceneChange: false))
    }

    /// All steps on one frame: smooth `prob`, group the smoothed map with `group` (the grouper with this frame's
    /// offsets) and track its instances.
    public static func step(_ state: TrackerState, prob: [Float], height: Int, width: Int,
                            contentHeight: Double? = nil, contentWidth: Double? = nil,
                            configuration: TrackerConfiguration = TrackerConfiguration(),
                            group: ([Float]) throws -> GrouperResult) throws
        -> (state: TrackerState, instances: GrouperResult, frame: TrackedFrame) {
        try configuration.validate()
        let (smoothed, sceneChange) = try smooth(state, prob: prob, height: height, width: width,
                                                 configuration: configuration)
        let instances = try group(smoothed)
        var withMap = state
        withMap.smoothed = smoothed
        withMap.smoothedHeight = height
        withMap.smoothedWidth = width
        var (next, frame) = try update(withMap, labels: instances.labels, height: height, width: width,
                                       contentHeight: contentHeight, contentWidth: contentWidth,
                                       configuration: configuration)
        frame.sceneChange = sceneChange
        return (next, instances, frame)
    }

    /// Step 2: `[track position: detection number]` of the greedy assignment by descending mask IoU (IoUs compared
    /// as integer cross products; ties by track position, then detection number).
    static func associate(_ tracks: [Track], labels: [Int32], cells: [[Int32]], tMatch: Double) -> [Int: Int] {
        let detections = cells.count - 1
        guard !tracks.isEmpty, detections > 0 else { return [:] }
        var candidates: [(inter: Int, union: Int, track: Int, detection: Int)] = []
        var inters = [Int](repeating: 0, count: detections + 1)
        for (k, track) in tracks.enumerated() {
            for i in 0...detections { inters[i] = 0 }
            for c in track.mask { inters[Int(labels[Int(c)])] += 1 }
            for d in 1...detections where inters[d] > 0 {
                let inter = inters[d], union = track.mask.count + cells[d].count - inters[d]
                if Double(inter) >= tMatch * Double(union) { candidates.append((inter, union, k, d)) }
            }
        }
        candidates.sort { a, b in
            let left = Int64(a.inter) * Int64(b.union), right = Int64(b.inter) * Int64(a.union)
            if left != right { return left > right }
            return a.track != b.track ? a.track < b.track : a.detection < b.detection
        }
        var taken: [Int: Int] = [:]
        var used = Set<Int>()
        for c in candidates where taken[c.track] == nil && !used.contains(c.detection) {
            taken[c.track] = c.detection
            used.insert(c.detection)
        }
        return taken
    }

    /// Step 4's score of a matched confirmed track: area, centrality and age terms, in the spec's order.
    static func mainScore(_ track: Track, width: Int, contentHeight: Double, contentWidth: Double,
                          configuration c: TrackerConfiguration) -> Double {
        let n = track.mask.count
        var sumRows = 0, sumCols = 0
        for cell in track.mask {
            sumRows += Int(cell) / width
            sumCols += Int(cell) % width
        }
        let area = min(1.0, Double(n) / (contentHeight * contentWidth))
        let cx = Double(sumCols) / Double(n) + 0.5
        let cy = Double(sumRows) / Double(n) + 0.5
        let ux = (cx - contentWidth / 2) / (contentWidth / 2)
        let uy = (cy - contentHeight / 2) / (contentHeight / 2)
        let center = max(0.0, 1.0 - (ux * ux + uy * uy) / 2)
        let grown = Double(min(track.age, c.ageFrames)) / Double(c.ageFrames)
        return c.wArea * area + c.wCenter * center + c.wAge * grown
    }
}
