@testable import BBEGrouper
import Foundation

/// A deliberately naive, line-by-line transcription of docs/grouper.md (arrays, no optimisation), used to
/// cross-check the optimised ``Grouper`` on random inputs.
enum ReferenceGrouper {
    static func group(prob: [Float], offsets: [Float], height h: Int, width w: Int, stride: Double,
                      config c: GrouperConfiguration) -> GrouperResult {
        let n = h * w
        var labels = [Int32](repeating: 0, count: n)
        if n == 0 { return GrouperResult(height: h, width: w, labels: labels, boxes: [], scores: []) }
        func box(_ idx: Int) -> [Double] {
            let i = idx / w, j = idx % w
            let cx = (Double(j) + 0.5) * stride, cy = (Double(i) + 0.5) * stride
            let dx = Double(offsets[4 * idx]), dy = Double(offsets[4 * idx + 1])
            let dw = Double(offsets[4 * idx + 2]), dh = Double(offsets[4 * idx + 3])
            let bw = c.anchorW * exp(min(max(dw, -c.maxLogScale), c.maxLogScale))
            let bh = c.anchorH * exp(min(max(dh, -c.maxLogScale), c.maxLogScale))
            let bx = cx + dx * c.anchorW, by = cy + dy * c.anchorH
            return [bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2]
        }
        func iou(_ a: [Double], _ b: [Double]) -> Double {
            let iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
            let ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
            let inter = iw * ih
            let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            return inter / union
        }
        var peaks: [Int] = []
        for i in 0..<h {
            for j in 0..<w {
                let v = Double(prob[i * w + j])
                guard v >= c.tC else { continue }
                var ok = true
                for di in -1...1 {
                    for dj in -1...1 where di != 0 || dj != 0 {
                        let k = i + di, l = j + dj
                        if k >= 0, k < h, l >= 0, l < w, Double(prob[k * w + l]) > v { ok = false }
                    }
                }
                if ok { peaks.append(i * w + j) }
            }
        }
        let order = peaks.enumerated().sorted { a, b in
            prob[a.element] != prob[b.element] ? prob[a.element] > prob[b.element] : a.offset < b.offset
        }.map(\.element)
        var kept: [[Double]] = []
        for idx in order where kept.count < c.maxInstances {
            let b = box(idx)
            if kept.allSatisfy({ iou(b, $0) <= c.tNms }) { kept.append(b) }
        }
        guard !kept.isEmpty else { return GrouperResult(height: h, width: w, labels: labels, boxes: [], scores: []) }
        for idx in 0..<n where Double(prob[idx]) >= c.tFg {
            let b = box(idx)
            let ious = kept.map { iou(b, $0) }
            var best = 0
            for k in 1..<ious.count where ious[k] > ious[best] { best = k }
            if ious[best] >= c.tIou { labels[idx] = Int32(best + 1) }
        }
        var boxes: [Box] = []
        var scores: [Float] = []
        var renumber = [Int32](repeating: 0, count: kept.count + 1)
        for k in 0..<kept.count {
            let cells = (0..<n).filter { labels[$0] == Int32(k + 1) }
            if cells.isEmpty { continue }
            let sum = cells.reduce(0.0) { $0 + Double(prob[$1]) }
            boxes.append(Box(x1: Float(kept[k][0]), y1: Float(kept[k][1]), x2: Float(kept[k][2]), y2: Float(kept[k][3])))
            scores.append(Float(sum / Double(cells.count)))
            renumber[k + 1] = Int32(boxes.count)
        }
        labels = labels.map { renumber[Int($0)] }
        return GrouperResult(height: h, width: w, labels: labels, boxes: boxes, scores: scores)
    }
}

/// SplitMix64: a small seeded generator so property tests are reproducible on every platform.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
