import Foundation

/// The BBE instance grouper of docs/grouper.md (paper section 3.3): peaks, greedy NMS, assignment of
/// person cells to kept boxes by IoU, in mode ``GrouperMode/refine`` refinement rounds (median or mean boxes,
/// NMS by cell count, reassignment), renumbering.
///
/// All arithmetic is done in `Double` after widening each `Float` input exactly; boxes and scores are
/// rounded to `Float` at the end. A `Grouper` keeps preallocated work buffers between calls, so one
/// instance must not be used from two threads at the same time (create one per thread or queue).
///
/// ```swift
/// let grouper = Grouper(configuration: try GrouperConfiguration(metadataJSON: json))
/// let result = try grouper.group(prob: prob, offsets: offsets, height: 128, width: 128, stride: 4)
/// ```
public final class Grouper {
    /// Thresholds and anchor used by ``group(prob:offsets:height:width:stride:)``.
    public var configuration: GrouperConfiguration

    // Work buffers, grown on demand and reused (no per-pixel or per-call allocation besides the result).
    private var capacity = 0
    private var personIndex: UnsafeMutablePointer<Int32>? = nil   // flat index of each person cell
    private var personLabel: UnsafeMutablePointer<Int32>? = nil   // kept number (0 = none) of each person cell
    private var personBox: UnsafeMutablePointer<Double>? = nil    // 5 per person cell: x1, y1, x2, y2, area
    private var peakIndex: UnsafeMutablePointer<Int32>? = nil     // flat index of each peak
    private var keptCapacity = 0
    private var kept: UnsafeMutablePointer<Double>? = nil         // 5 per kept box: x1, y1, x2, y2, area
    private var counts: UnsafeMutablePointer<Int>? = nil
    private var sums: UnsafeMutablePointer<Double>? = nil
    private var renumber: UnsafeMutablePointer<Int32>? = nil
    // Refinement work buffers (mode refine): the cells' coordinates grouped by label, refined boxes.
    private var values: UnsafeMutablePointer<Double>? = nil       // 4 x cells: x1, y1, x2, y2 grouped by label
    private var refined: UnsafeMutablePointer<Double>? = nil      // 5 per refined box: x1, y1, x2, y2, area
    private var boxSums: UnsafeMutablePointer<Double>? = nil      // 4 per label 0...k: coordinate sums (mean)
    private var refinedCount: UnsafeMutablePointer<Int>? = nil    // cells of each refined box
    private var refinedOrder: UnsafeMutablePointer<Int>? = nil    // refined boxes by count desc, ties by number
    private var groupStart: UnsafeMutablePointer<Int>? = nil
    private var refinedInto: UnsafeMutablePointer<Int32>? = nil   // previous label -> label of its refined box (0: none)
    private var settle: UnsafeMutablePointer<Double>? = nil       // per box: an IoU above this makes it the argmax

    /// Creates a grouper with `configuration` (default: the values of docs/grouper.md).
    public init(configuration: GrouperConfiguration = GrouperConfiguration()) {
        self.configuration = configuration
    }

    deinit {
        personIndex?.deallocate()
        personLabel?.deallocate()
        personBox?.deallocate()
        peakIndex?.deallocate()
        kept?.deallocate()
        counts?.deallocate()
        sums?.deallocate()
        renumber?.deallocate()
        values?.deallocate()
        refined?.deallocate()
        boxSums?.deallocate()
        refinedCount?.deallocate()
        refinedOrder?.deallocate()
        groupStart?.deallocate()
        refinedInto?.deallocate()
        settle?.deallocate()
    }

    private func reserve(cells: Int, keptBoxes: Int) {
        if cells > capacity {
            personIndex?.deallocate()
            personLabel?.deallocate()
            personBox?.deallocate()
            peakIndex?.deallocate()
            values?.deallocate()
            personIndex = .allocate(capacity: cells)
            personLabel = .allocate(capacity: cells)
            personBox = .allocate(capacity: 5 * cells)
            peakIndex = .allocate(capacity: cells)
            values = .allocate(capacity: 4 * cells)
            capacity = cells
        }
        let k = max(keptBoxes, 1)
        if k > keptCapacity {
            kept?.deallocate()
            counts?.deallocate()
            sums?.deallocate()
            renumber?.deallocate()
            refined?.deallocate()
            boxSums?.deallocate()
            refinedCount?.deallocate()
            refinedOrder?.deallocate()
            groupStart?.deallocate()
            refinedInto?.deallocate()
            settle?.deallocate()
            kept = .allocate(capacity: 5 * k)
            counts = .allocate(capacity: k + 1)
            sums = .allocate(capacity: k + 1)
            renumber = .allocate(capacity: k + 1)
            refined = .allocate(capacity: 5 * k)
            boxSums = .allocate(capacity: 4 * (k + 1))
            refinedCount = .allocate(capacity: k)
            refinedOrder = .allocate(capacity: k)
            groupStart = .allocate(capacity: k + 2)
            refinedInto = .allocate(capacity: k + 1)
            settle = .allocate(capacity: k)
            keptCapacity = k
        }
    }

    /// Groups contiguous arrays (see the `UnsafeBufferPointer` overload for details).
    public func group(prob: [Float], offsets: [Float], height: Int, width: Int, stride: Double) throws -> GrouperResult {
        try prob.withUnsafeBufferPointer { p in
            try offsets.withUnsafeBufferPointer { o in
                try group(prob: p, offsets: o, height: height, width: width, stride: stride)
            }
        }
    }

    /// Groups a probability map and its box offsets into person instances.
    ///
    /// - Parameters:
    ///   - prob: `height * width` person probabilities in [0, 1], row-major.
    ///   - offsets: `height * width * 4` values `(dx, dy, dw, dh)`, row-major, channel last.
    ///   - height: rows `H` of the output maps (0 is valid: empty result).
    ///   - width: columns `W` of the output maps (0 is valid: empty result).
    ///   - stride: input pixels per output cell, finite and `> 0`.
    /// - Returns: labels `H * W`, boxes and scores of the `M <= maxInstances` instances.
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` for buffer sizes other than `H*W` and `H*W*4`,
    ///   ``BBEGrouperError/nonFinite(array:index:)`` naming `prob` or `offsets` for NaN/inf,
    ///   ``BBEGrouperError/invalidConfiguration(_:)`` for a bad stride or configuration.
    public func group(prob: UnsafeBufferPointer<Float>, offsets: UnsafeBufferPointer<Float>,
                      height: Int, width: Int, stride: Double) throws -> GrouperResult {
        // ---- Validation (before any work) ----
        let config = configuration
        try config.validate()
        guard height >= 0, width >= 0 else {
            throw BBEGrouperError.shapeMismatch("height and width must be >= 0, got \(height) x \(width)")
        }
        let (cells, overflow) = height.multipliedReportingOverflow(by: width)
        guard !overflow, cells <= Int(Int32.max) / 4 else {
            throw BBEGrouperError.shapeMismatch("map of \(height) x \(width) cells is too large")
        }
        guard prob.count == cells else {
            throw BBEGrouperError.shapeMismatch(
                "prob has \(prob.count) values, expected height * width = \(height) * \(width) = \(cells)")
        }
        guard offsets.count == cells * 4 else {
            throw BBEGrouperError.shapeMismatch(
                "offsets has \(offsets.count) values, expected height * width * 4 = \(height) * \(width) * 4 = \(cells * 4)")
        }
        if let bad = Grouper.firstNonFinite(prob) {
            throw BBEGrouperError.nonFinite(array: "prob", index: bad)
        }
        if let bad = Grouper.firstNonFinite(offsets) {
            throw BBEGrouperError.nonFinite(array: "offsets", index: bad)
        }
        guard stride.isFinite, stride > 0 else {
            throw BBEGrouperError.invalidConfiguration("stride must be finite and > 0, got \(stride)")
        }
        if cells == 0 || config.maxInstances == 0 {
            return .empty(height: height, width: width)
        }
        reserve(cells: cells, keptBoxes: config.maxInstances)
        guard let p = prob.baseAddress, let o = offsets.baseAddress,
              let personIndex, let personLabel, let personBox, let peakIndex, let kept, let counts, let sums, let renumber else {
            return .empty(height: height, width: width)
        }

        // ---- Steps 1 and 2, one raster pass: person cells with their decoded boxes, and the peaks ----
        let tC = config.tC, tFg = config.tFg
        let aw = config.anchorW, ah = config.anchorH, mls = config.maxLogScale
        var nPerson = 0
        var nPeaks = 0
        let h = height, w = width
        for i in 0..<h {
            let row = i * w
            let up = i > 0 ? row - w : -1
            let down = i + 1 < h ? row + w : -1
            let cy = (Double(i) + 0.5) * stride
            for j in 0..<w {
                let v = p[row + j]
                let d = Double(v)
                if d >= tFg {
                    personIndex[nPerson] = Int32(truncatingIfNeeded: row + j)
                    let b = Grouper.decode(o + 4 * (row + j), cx: (Double(j) + 0.5) * stride, cy: cy,
                                           aw: aw, ah: ah, mls: mls)
                    let q = personBox + 5 * nPerson
                    q[0] = b.0; q[1] = b.1; q[2] = b.2; q[3] = b.3
                    q[4] = max(b.2 - b.0, 0) * max(b.3 - b.1, 0)
                    nPerson += 1
                }
                if d >= tC {
                    // Non-strict: v >= every in-map 8-neighbour (Float compare == Double compare here).
                    let left = j > 0, right = j + 1 < w
                    var peak = true
                    if left && p[row + j - 1] > v { peak = false }
                    if right && p[row + j + 1] > v { peak = false }
                    if up >= 0 {
                        if p[up + j] > v { peak = false }
                        if left && p[up + j - 1] > v { peak = false }
                        if right && p[up + j + 1] > v { peak = false }
                    }
                    if down >= 0 {
                        if p[down + j] > v { peak = false }
                        if left && p[down + j - 1] > v { peak = false }
                        if right && p[down + j + 1] > v { peak = false }
                    }
                    if peak {
                        peakIndex[nPeaks] = Int32(truncatingIfNeeded: row + j)
                        nPeaks += 1
                    }
                }
            }
        }
        if nPeaks == 0 {
            return .empty(height: height, width: width)
        }

        // ---- Step 3: greedy NMS over peaks, probability descending, ties in raster order ----
        var peaks = UnsafeMutableBufferPointer(start: peakIndex, count: nPeaks)
        peaks.sort { a, b in
            let pa = p[Int(a)], pb = p[Int(b)]
            return pa != pb ? pa > pb : a < b
        }
        let tNms = config.tNms, tIou = config.tIou
        let maxKeep = config.maxInstances
        var nKept = 0
        for c in 0..<nPeaks where nKept < maxKeep {
            let idx = Int(peaks[c])
            let i = idx / w, j = idx - (idx / w) * w
            let b = Grouper.decode(o + 4 * idx, cx: (Double(j) + 0.5) * stride, cy: (Double(i) + 0.5) * stride,
                                   aw: aw, ah: ah, mls: mls)
            let area = max(b.2 - b.0, 0) * max(b.3 - b.1, 0)
            var suppressed = false
            for k in 0..<nKept {
                let q = kept + 5 * k
                if Grouper.iou(b.0, b.1, b.2, b.3, area, q) > tNms {
                    suppressed = true
                    break
                }
            }
            if !suppressed {
                let q = kept + 5 * nKept
                q[0] = b.0; q[1] = b.1; q[2] = b.2; q[3] = b.3; q[4] = area
                nKept += 1
            }
        }

        // ---- Step 4: assign person cells to the kept box of maximum IoU (ties: earlier box) ----
        let rounds = config.mode == .refine ? config.refineRounds : 0
        assign(nPerson: nPerson, nKept: nKept, tIou: tIou, prob: rounds == 0 ? p : nil, fromRefined: false)

        // ---- Step 4b (mode refine): refinement rounds ----
        for round in 0..<rounds {
            nKept = refineRound(nPerson: nPerson, nKept: nKept, tNms: tNms, statistic: configuration.refineStatistic)
            assign(nPerson: nPerson, nKept: nKept, tIou: tIou, prob: round == rounds - 1 ? p : nil, fromRefined: true)
        }

        // ---- Step 5: drop kept boxes without cells, renumber 1...M, scores ----
        var boxes: [Box] = []
        var scores: [Float] = []
        boxes.reserveCapacity(nKept)
        scores.reserveCapacity(nKept)
        renumber[0] = 0
        for k in 0..<nKept {
            if counts[k + 1] > 0 {
                let q = kept + 5 * k
                boxes.append(Box(x1: Float(q[0]), y1: Float(q[1]), x2: Float(q[2]), y2: Float(q[3])))
                scores.append(Float(sums[k + 1] / Double(counts[k + 1])))
                renumber[k + 1] = Int32(truncatingIfNeeded: boxes.count)
            } else {
                renumber[k + 1] = 0
            }
        }
        let labels = [Int32](unsafeUninitializedCapacity: cells) { buffer, initialized in
            let out = buffer.baseAddress!
            out.initialize(repeating: 0, count: cells)
            for n in 0..<nPerson {
                out[Int(personIndex[n])] = renumber[Int(personLabel[n])]
            }
            initialized = cells
        }
        return GrouperResult(height: height, width: width, labels: labels, boxes: boxes, scores: scores)
    }

    /// Step 4: labels every person cell with the kept box (of `nKept`) of maximum IoU, ties to the earlier box,
    /// if that IoU is `>= tIou` (else 0); fills `counts` (per label, 0 = none) and, given `prob` (the last
    /// assignment), the `sums` of step 5 (raster order).
    ///
    /// `fromRefined` (after ``refineRound(nPerson:nKept:tNms:statistic:)``): a cell first tries the box its previous
    /// box refined into (`refinedInto`). 1 - IoU is a metric (the Jaccard distance), so an IoU `a` with box `g` above
    /// `settle[g]` = (1 + max IoU of `g` with another box) / 2 + 1e-9 leaves every other box an IoU < `a`: `g` is
    /// the strict argmax and the other boxes need not be tried. The labels are exactly those of the full loop.
    private func assign(nPerson: Int, nKept: Int, tIou: Double, prob p: UnsafePointer<Float>?, fromRefined: Bool) {
        guard let personIndex, let personLabel, let personBox, let kept, let counts, let sums, let refinedInto,
              let settle else { return }
        // IoUs are >= 0, so starting from (box 0, IoU 0) and replacing only on a strictly larger IoU is the
        // argmax with ties to the earlier box; a zero intersection can never win and skips the division.
        for k in 0...nKept {
            counts[k] = 0
            sums[k] = 0
        }
        if fromRefined {
            for k in 0..<nKept {
                var most = 0.0
                for j in 0..<nKept where j != k {
                    let q = kept + 5 * j
                    most = max(most, Grouper.iou(q[0], q[1], q[2], q[3], q[4], kept + 5 * k))
                }
                settle[k] = (1 + most) / 2 + Grouper.jaccardMargin
            }
        }
        for n in 0..<nPerson {
            let idx = Int(personIndex[n])
            let c = personBox + 5 * n
            let x1 = c[0], y1 = c[1], x2 = c[2], y2 = c[3], area = c[4]
            if fromRefined, case let g = Int(refinedInto[Int(personLabel[n])]), g > 0,
               case let v = Grouper.iou(x1, y1, x2, y2, area, kept + 5 * (g - 1)), v > settle[g - 1] {
                let label = v >= tIou ? g : 0
                personLabel[n] = Int32(truncatingIfNeeded: label)
                counts[label] += 1
                if let p {
                    sums[label] += Double(p[idx])
                }
                continue
            }
            var best = 0
            var bestIoU = 0.0
            for k in 0..<nKept {
                let q = kept + 5 * k
                let iw = min(x2, q[2]) - max(x1, q[0])
                let ih = min(y2, q[3]) - max(y1, q[1])
                if iw > 0 && ih > 0 {
                    let inter = iw * ih
                    let union = area + q[4] - inter
                    let v = union > 0 ? inter / union : 0
                    if v > bestIoU {
                        bestIoU = v
                        best = k
                    }
                }
            }
            let label = nKept > 0 && bestIoU >= tIou ? best + 1 : 0
            personLabel[n] = Int32(truncatingIfNeeded: label)
            counts[label] += 1
            if let p {
                sums[label] += Double(p[idx])
            }
        }
    }

    /// Groups the cells' coordinates by label for the medians (counting sort): coordinate c of group k (1...nKept)
    /// is `values[c * nPerson + groupStart[k] ..< c * nPerson + groupStart[k + 1]]`.
    private func groupByLabel(nPerson: Int, nKept: Int) {
        guard let personLabel, let personBox, let counts, let values, let groupStart else { return }
        groupStart[0] = 0
        for k in 0...nKept {
            groupStart[k + 1] = groupStart[k] + counts[k]
        }
        var fill = [Int](unsafeUninitializedCapacity: nKept + 1) { buffer, initialized in
            for k in 0...nKept { buffer[k] = groupStart[k] }
            initialized = nKept + 1
        }
        for n in 0..<nPerson {
            let label = Int(personLabel[n])
            let at = fill[label]
            fill[label] = at + 1
            let c = personBox + 5 * n
            values[at] = c[0]
            values[nPerson + at] = c[1]
            values[2 * nPerson + at] = c[2]
            values[3 * nPerson + at] = c[3]
        }
    }

    /// One refinement round of docs/grouper.md step 4b on the labels of the last assignment: the per-coordinate
    /// `statistic` (median or mean) box of each kept box's cells (boxes without cells dropped), duplicates removed
    /// by greedy NMS scored by cell count (ties: lower number), survivors written back into `kept` in their
    /// previous order.
    /// Returns the number of surviving boxes; the caller assigns the cells again.
    private func refineRound(nPerson: Int, nKept: Int, tNms: Double, statistic: RefineStatistic) -> Int {
        guard let personLabel, let personBox, let kept, let counts, let values, let refined, let boxSums,
              let refinedCount, let refinedOrder, let groupStart, let refinedInto else { return 0 }
        if statistic == .mean {
            // One pass over the cells in raster order: the float64 sum of each coordinate per label.
            boxSums.update(repeating: 0, count: 4 * (nKept + 1))
            for n in 0..<nPerson {
                let s = boxSums + 4 * Int(personLabel[n]), c = personBox + 5 * n
                s[0] += c[0]
                s[1] += c[1]
                s[2] += c[2]
                s[3] += c[3]
            }
        } else {
            groupByLabel(nPerson: nPerson, nKept: nKept)
        }
        // Refined boxes of the kept boxes that have cells, in kept order (the median's selection reorders each group
        // in place).
        var nRefined = 0
        refinedInto[0] = 0
        for k in stride(from: 1, through: nKept, by: 1) {
            refinedInto[k] = 0
            guard counts[k] > 0 else { continue }
            let n = counts[k]
            let r = refined + 5 * nRefined
            if statistic == .mean {
                let s = boxSums + 4 * k, count = Double(n)
                for coordinate in 0..<4 {
                    r[coordinate] = s[coordinate] / count
                }
            } else {
                let start = groupStart[k]
                for coordinate in 0..<4 {
                    r[coordinate] = Grouper.median(values + coordinate * nPerson + start, count: n)
                }
            }
            r[4] = max(r[2] - r[0], 0) * max(r[3] - r[1], 0)
            refinedCount[nRefined] = n
            refinedOrder[nRefined] = nRefined
            nRefined += 1
        }
        // Duplicate removal: greedy NMS by cell count descending, equal counts by number ascending.
        var order = UnsafeMutableBufferPointer(start: refinedOrder, count: nRefined)
        order.sort { a, b in refinedCount[a] != refinedCount[b] ? refinedCount[a] > refinedCount[b] : a < b }
        var survives = [Bool](repeating: false, count: nRefined)
        var survivors: [Int] = []
        survivors.reserveCapacity(nRefined)
        for a in order {
            let r = refined + 5 * a
            if !survivors.contains(where: { Grouper.iou(r[0], r[1], r[2], r[3], r[4], refined + 5 * $0) > tNms }) {
                survivors.append(a)
                survives[a] = true
            }
        }
        // Survivors in their previous (number) order become the boxes of the next assignment; each previous
        // label learns the label of its refined box (0 when it had no cell or its refined box was removed).
        var nSurviving = 0
        var a = 0
        for k in stride(from: 1, through: nKept, by: 1) where counts[k] > 0 {
            if survives[a] {
                (kept + 5 * nSurviving).update(from: refined + 5 * a, count: 5)
                nSurviving += 1
                refinedInto[k] = Int32(truncatingIfNeeded: nSurviving)
            }
            a += 1
        }
        return nSurviving
    }

    /// One-shot convenience: groups with a temporary ``Grouper``.
    public static func group(prob: [Float], offsets: [Float], height: Int, width: Int, stride: Double,
                             configuration: GrouperConfiguration = GrouperConfiguration()) throws -> GrouperResult {
        try Grouper(configuration: configuration).group(prob: prob, offsets: offsets, height: height, width: width,
                                                        stride: stride)
    }

    // MARK: - Kernels

    /// Slack of the settling test of ``assign(nPerson:nKept:tIou:prob:fromRefined:)``: IoU rounding errors are ~1e-15.
    static let jaccardMargin = 1e-9

    /// Smallest count for which ``narrow(_:count:k:)`` splits at sampled pivots.
    static let sampledSelectMinimum = 64

    /// Step 1 of docs/grouper.md for the cell centred at `(cx, cy)` whose 4 offsets start at `q`:
    /// `(x1, y1, x2, y2)` in input pixels, Double.
    @inline(__always)
    static func decode(_ q: UnsafePointer<Float>, cx: Double, cy: Double,
                       aw: Double, ah: Double, mls: Double) -> (Double, Double, Double, Double) {
        let dw = min(max(Double(q[2]), -mls), mls)
        let dh = min(max(Double(q[3]), -mls), mls)
        let bw = aw * exp(dw)
        let bh = ah * exp(dh)
        let bx = cx + Double(q[0]) * aw
        let by = cy + Double(q[1]) * ah
        return (bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2)
    }

    /// IoU of box `(x1, y1, x2, y2)` of area `area` with the kept box at `q` (x1, y1, x2, y2, area).
    @inline(__always)
    static func iou(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ area: Double,
                    _ q: UnsafeMutablePointer<Double>) -> Double {
        let iw = max(min(x2, q[2]) - max(x1, q[0]), 0)
        let ih = max(min(y2, q[3]) - max(y1, q[1]), 0)
        let inter = iw * ih
        let union = area + q[4] - inter
        return union > 0 ? inter / union : 0
    }

    /// Median of `count >= 1` values (docs/grouper.md step 4b): the middle value, or `(a + b) / 2` of the two
    /// middle values of an even count. Reorders the values (selection in O(count), no full sort).
    static func median(_ v: UnsafeMutablePointer<Double>, count n: Int) -> Double {
        let k = n / 2
        let (lo, hi) = narrow(v, count: n, k: k)
        let upper = select(v, lo: lo, hi: hi, k: k)
        if n % 2 == 1 {
            return upper
        }
        // v[0 ..< k] hold the k smallest values and v[0 ..< lo] <= v[lo ..< k]: their maximum is the lower middle.
        let from = k > lo ? lo : 0
        var lower = v[from]
        for m in (from + 1)..<k where v[m] > lower {
            lower = v[m]
        }
        return (lower + upper) / 2
    }

    /// From `sampledSelectMinimum` values on, one three-way pass splits `v[0 ..< count]` at two pivots that
    /// bracket the `k`-th value in a sorted sample of 16 (values below, between, above them); returns the range
    /// `lo ... hi` of the part holding rank `k` (about a quarter of the values when the sample brackets it), with
    /// `v[0 ..< lo] <= v[lo ... hi] <= v[hi + 1 ..< count]`. Smaller counts: the whole range.
    static func narrow(_ v: UnsafeMutablePointer<Double>, count n: Int, k: Int) -> (Int, Int) {
        guard n >= sampledSelectMinimum else { return (0, n - 1) }
        let (low, high) = withUnsafeTemporaryAllocation(of: Double.self, capacity: 16) { s -> (Double, Double) in
            s.initialize(repeating: 0)
            for m in 0..<16 {  // insertion sort of v[0], v[n / 16], ..., v[15 n / 16]
                let x = v[m * n / 16]
                var p = m
                while p > 0 && s[p - 1] > x {
                    s[p] = s[p - 1]
                    p -= 1
                }
                s[p] = x
            }
            let t = k * 16 / n
            return (s[max(t - 2, 0)], s[min(t + 2, 15)])
        }
        var below = 0, i = 0, above = n - 1  // v[0 ..< below] < low, v[above + 1 ..< n] > high
        while i <= above {
            let x = v[i]
            if x < low {
                v[i] = v[below]
                v[below] = x
                below += 1
                i += 1
            } else if x > high {
                v[i] = v[above]
                v[above] = x
                above -= 1
            } else {
                i += 1
            }
        }
        if k < below {
            return (0, below - 1)
        }
        if k > above {
            return (above + 1, n - 1)
        }
        return (below, above)
    }

    /// The `k`-th smallest (0-based) of `v[lo ... hi]` by Hoare partitioning around a median-of-three pivot,
    /// for `v[0 ..< lo] <= v[lo ... hi] <= v[hi + 1 ...]`; afterwards `v[0 ..< k] <= v[k] <= v[k + 1 ...]`.
    static func select(_ v: UnsafeMutablePointer<Double>, lo start: Int, hi end: Int, k: Int) -> Double {
        var lo = start, hi = end
        while lo < hi {
            let a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi]
            let pivot = max(min(a, b), min(max(a, b), c))
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j {
                    let t = v[i]
                    v[i] = v[j]
                    v[j] = t
                    i += 1
                    j -= 1
                }
            }
            if k <= j {
                hi = j
            } else if k >= i {
                lo = i
            } else {
                return v[k]
            }
        }
        return v[k]
    }

    /// Flat index of the first NaN or ±inf, or `nil`. Checks the exponent bits (vectorisable).
    static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = values.baseAddress else { return nil }
        let n = values.count
        let bits = UnsafeRawPointer(base).assumingMemoryBound(to: UInt32.self)
        let chunk = 1024
        var start = 0
        while start < n {
            let end = min(start + chunk, n)
            var any: UInt32 = 0
            for k in start..<end {
                // exponent all ones <=> NaN or inf: adding 0x00800000 to (bits & 0x7f800000) carries to bit 31.
                any |= (bits[k] & 0x7f80_0000) &+ 0x0080_0000
            }
            if any & 0x8000_0000 != 0 {
                for k in start..<end where !base[k].isFinite {
                    return k
                }
            }
            start = end
        }
        return nil
    }
}
