@testable import BBEGrouper
import Foundation
import XCTest

/// Property tests mirroring the Python ones, on seeded random maps, plus a cross-check against the naive
/// ``ReferenceGrouper`` transcription of docs/grouper.md.
final class PropertyTests: XCTestCase {
    struct Sample {
        var prob: [Float]
        var offsets: [Float]
        var height: Int
        var width: Int
        var stride: Double
        var config: GrouperConfiguration
    }

    /// A random map: elliptic "people" with encoded boxes, noisy background, sometimes quantised
    /// probabilities (plateaus and ties) and random configurations.
    static func sample(_ rng: inout SeededGenerator) -> Sample {
        let h = Int.random(in: 1...40, using: &rng), w = Int.random(in: 1...40, using: &rng)
        let stride = [4.0, 4.0, 8.0, 4.5].randomElement(using: &rng)!
        var config = GrouperConfiguration()
        if Bool.random(using: &rng) {
            config = GrouperConfiguration(tC: Double.random(in: 0.3...0.9, using: &rng),
                                          tNms: Double.random(in: 0...1, using: &rng),
                                          tFg: Double.random(in: 0.2...0.8, using: &rng),
                                          tIou: [0, 0.1, 0.3, 0.5, 1].randomElement(using: &rng)!,
                                          maxInstances: Int.random(in: 0...25, using: &rng),
                                          maxLogScale: [0.5, 4.0].randomElement(using: &rng)!)
        }
        var prob = (0..<(h * w)).map { _ in Float.random(in: 0...0.45, using: &rng) }
        var offsets = (0..<(h * w * 4)).map { _ in Float.random(in: -1...1, using: &rng) }
        let quantise = Int.random(in: 0..<3, using: &rng) == 0
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let side = Double(max(h, w)) * stride
            let bw = Double.random(in: 10...max(11, side / 2), using: &rng), bh = bw * Double.random(in: 1...2.5, using: &rng)
            let x1 = Double.random(in: -bw / 4...side, using: &rng), y1 = Double.random(in: -bh / 4...side, using: &rng)
            let peak = Double.random(in: 0.6...0.99, using: &rng), edge = Double.random(in: 0.3...0.7, using: &rng)
            let bx = x1 + bw / 2, by = y1 + bh / 2
            for i in 0..<h {
                for j in 0..<w {
                    let cx = (Double(j) + 0.5) * stride, cy = (Double(i) + 0.5) * stride
                    let r2 = pow((cx - bx) / (bw / 2), 2) + pow((cy - by) / (bh / 2), 2)
                    guard r2 <= 1 else { continue }
                    var p = peak - (peak - edge) * r2
                    if quantise { p = (p * 20).rounded() / 20 }
                    let k = i * w + j
                    prob[k] = Float(p)
                    let clean = [(bx - cx) / config.anchorW, (by - cy) / config.anchorH,
                                 log(bw / config.anchorW), log(bh / config.anchorH)]
                    for c in 0..<4 {
                        offsets[4 * k + c] = Float(clean[c]) + Float.random(in: -0.05...0.05, using: &rng)
                    }
                }
            }
        }
        return Sample(prob: prob, offsets: offsets, height: h, width: w, stride: stride, config: config)
    }

    func run(_ s: Sample, _ grouper: Grouper? = nil) throws -> GrouperResult {
        if let grouper {
            grouper.configuration = s.config
            return try grouper.group(prob: s.prob, offsets: s.offsets, height: s.height, width: s.width, stride: s.stride)
        }
        return try Grouper.group(prob: s.prob, offsets: s.offsets, height: s.height, width: s.width, stride: s.stride,
                                 configuration: s.config)
    }

    func testPropertiesOnRandomMaps() throws {
        var rng = SeededGenerator(seed: 20_240_601)
        let shared = Grouper()
        var withInstances = 0
        for trial in 0..<300 {
            let s = Self.sample(&rng)
            let r = try run(s)
            let m = r.count
            withInstances += m > 0 ? 1 : 0
            let tag = "trial \(trial)"
            // labels only on person cells
            for k in 0..<(s.height * s.width) where r.labels[k] != 0 {
                XCTAssertGreaterThanOrEqual(Double(s.prob[k]), s.config.tFg, tag)
            }
            XCTAssertLessThanOrEqual(m, s.config.maxInstances, tag)
            XCTAssertEqual(r.boxes.count, m, tag)
            // labels are 0...M and every instance has at least one cell
            let present = Set(r.labels.filter { $0 != 0 })
            XCTAssertEqual(present, Set((0..<m).map { Int32($0 + 1) }), tag)
            // scores in [0, 1] and equal to the mean probability of the instance's cells
            for k in 0..<m {
                XCTAssertTrue((0...1).contains(r.scores[k]), tag)
                let cells = (0..<r.labels.count).filter { r.labels[$0] == Int32(k + 1) }
                let mean = cells.reduce(0.0) { $0 + Double(s.prob[$1]) } / Double(cells.count)
                XCTAssertEqual(Double(r.scores[k]), mean, accuracy: 1e-6, tag)
            }
            // deterministic, with a fresh or a reused grouper
            XCTAssertEqual(try run(s), r, tag)
            XCTAssertEqual(try run(s, shared), r, tag)
            // identical to the naive transcription of the spec
            let reference = ReferenceGrouper.group(prob: s.prob, offsets: s.offsets, height: s.height, width: s.width,
                                                   stride: s.stride, config: s.config)
            XCTAssertEqual(r, reference, "\(tag): differs from the reference transcription")
        }
        XCTAssertGreaterThan(withInstances, 100, "random maps should usually contain instances")
    }

    /// The Python property test's distribution: uniform prob in [0, 1], offsets in [-2, 2], t_iou in [0.5, 1].
    func testPropertiesOnUniformMaps() throws {
        var rng = SeededGenerator(seed: 7)
        for trial in 0..<150 {
            let h = Int.random(in: 1...24, using: &rng), w = Int.random(in: 1...24, using: &rng)
            let prob = (0..<(h * w)).map { _ in Float.random(in: 0...1, using: &rng) }
            let offsets = (0..<(h * w * 4)).map { _ in Float.random(in: -2...2, using: &rng) }
            let config = GrouperConfiguration(tIou: Double.random(in: 0.5...1, using: &rng),
                                              maxInstances: Int.random(in: 0...25, using: &rng))
            let r = try Grouper.group(prob: prob, offsets: offsets, height: h, width: w, stride: 4, configuration: config)
            XCTAssertLessThanOrEqual(r.count, config.maxInstances)
            for k in 0..<(h * w) where r.labels[k] > 0 { XCTAssertGreaterThanOrEqual(prob[k], 0.5) }
            XCTAssertTrue(r.scores.allSatisfy { (0...1).contains($0) })
            XCTAssertEqual(Set(r.labels.filter { $0 > 0 }), Set((0..<r.count).map { Int32($0 + 1) }), "trial \(trial)")
            XCTAssertEqual(r, ReferenceGrouper.group(prob: prob, offsets: offsets, height: h, width: w, stride: 4,
                                                     config: config), "trial \(trial)")
        }
    }

    /// The selection-based median of step 4b equals the sort-based definition, with many ties, both parities.
    func testMedianMatchesTheSortedDefinition() {
        var rng = SeededGenerator(seed: 25)
        for _ in 0..<500 {
            let n = Int.random(in: 1...400, using: &rng)  // past Grouper.sampledSelectMinimum: the sampled passes
            let levels = Int.random(in: 1...8, using: &rng)
            let values = (0..<n).map { _ in Double(Int.random(in: 0..<levels, using: &rng)) * 0.5 - 1 }
            let sorted = values.sorted()
            let expected = n % 2 == 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
            var work = values
            let got = work.withUnsafeMutableBufferPointer { Grouper.median($0.baseAddress!, count: n) }
            XCTAssertEqual(got, expected, "\(values)")
        }
    }

    func testAllZeroMapGivesNoInstance() throws {
        for (h, w) in [(1, 1), (16, 16), (7, 31)] {
            let r = try Grouper.group(prob: [Float](repeating: 0, count: h * w),
                                      offsets: [Float](repeating: 0, count: h * w * 4), height: h, width: w, stride: 4)
            XCTAssertEqual(r.count, 0)
            XCTAssertEqual(r.labels, [Int32](repeating: 0, count: h * w))
        }
    }

    func testEmptyMapIsValid() throws {
        for (h, w) in [(0, 0), (0, 5), (5, 0)] {
            let r = try Grouper.group(prob: [], offsets: [], height: h, width: w, stride: 4)
            XCTAssertEqual(r.count, 0)
            XCTAssertTrue(r.labels.isEmpty)
        }
    }

    func testMaxInstancesZeroKeepsNothing() throws {
        var prob = [Float](repeating: 0, count: 64)
        prob[27] = 0.9
        let r = try Grouper.group(prob: prob, offsets: [Float](repeating: 0, count: 256), height: 8, width: 8,
                                  stride: 4, configuration: GrouperConfiguration(maxInstances: 0))
        XCTAssertEqual(r.count, 0)
        XCTAssertEqual(r.labels, [Int32](repeating: 0, count: 64))
    }

    /// A single cell with zero offsets gives the anchor box centred on it (docs/grouper.md step 1).
    func testOnePixelIsTheAnchorBox() throws {
        var prob = [Float](repeating: 0, count: 64)
        prob[3 * 8 + 5] = 0.9
        let r = try Grouper.group(prob: prob, offsets: [Float](repeating: 0, count: 256), height: 8, width: 8, stride: 4)
        XCTAssertEqual(r.count, 1)
        let c = GrouperConfiguration()
        let expected = Box(x1: Float(22 - c.anchorW / 2), y1: Float(14 - c.anchorH / 2),
                           x2: Float(22 + c.anchorW / 2), y2: Float(14 + c.anchorH / 2))
        XCTAssertEqual(r.boxes, [expected])
        XCTAssertEqual(r.scores, [0.9])
        XCTAssertEqual(r.labels[29], 1)
    }

    /// t_iou = 0: a person cell whose box overlaps no kept box still goes to the first kept box (argmax of zeros).
    func testZeroIoUThresholdAssignsToFirstBox() throws {
        var prob = [Float](repeating: 0, count: 16 * 16)
        var offsets = [Float](repeating: 0, count: 16 * 16 * 4)
        prob[5 * 16 + 5] = 0.9
        prob[12 * 16 + 12] = 0.55
        offsets[4 * (12 * 16 + 12)] = 5  // far away: IoU 0 with the kept box
        let config = GrouperConfiguration(tIou: 0)
        let r = try Grouper.group(prob: prob, offsets: offsets, height: 16, width: 16, stride: 4, configuration: config)
        XCTAssertEqual(r.labels[12 * 16 + 12], 1)
        XCTAssertEqual(r, ReferenceGrouper.group(prob: prob, offsets: offsets, height: 16, width: 16, stride: 4,
                                                 config: config))
    }
}
