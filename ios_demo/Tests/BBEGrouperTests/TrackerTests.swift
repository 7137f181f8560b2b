import BBEGolden
@testable import BBEGrouper
import Foundation
import XCTest

/// The golden tracking sequences of ../tests/golden (docs/tracker.md) through the Swift tracker, bit for bit, and
/// the tracker's rules on small hand-made label maps.
final class TrackerTests: XCTestCase {
    static let directory = GoldenCase.defaultDirectory()

    func testEveryGoldenSequence() throws {
        let names = try GoldenTrackingSequence.names(in: Self.directory)
        XCTAssertTrue(names.contains("track_life") && names.contains("track_bench_129_10"))
        for name in names {
            let seq = try GoldenTrackingSequence(name: name, directory: Self.directory)
            let cells = seq.height * seq.width
            let grouper = Grouper(configuration: seq.grouper)
            var state = TrackerState()
            for t in 0..<seq.frames {
                let offsets = seq.frame(seq.offsets, t, perFrame: cells * 4)
                let (next, instances, frame) = try Tracker.step(
                    state, prob: seq.frame(seq.prob, t, perFrame: cells), height: seq.height, width: seq.width,
                    contentHeight: seq.contentHeight, contentWidth: seq.contentWidth, configuration: seq.tracker
                ) { smoothed in
                    try grouper.group(prob: smoothed, offsets: offsets, height: seq.height, width: seq.width,
                                      stride: seq.stride)
                }
                state = next
                let expectedMap = seq.frame(seq.smoothed, t, perFrame: cells)
                XCTAssertTrue(state.smoothed!.map(\.bitPattern) == expectedMap.map(\.bitPattern), "\(name) frame \(t): smoothed")
                XCTAssertTrue(instances.labels == seq.frame(seq.labels, t, perFrame: cells), "\(name) frame \(t): labels")
                let want = seq.expected[t]
                XCTAssertEqual(frame.ids, want.ids, "\(name) frame \(t): ids")
                XCTAssertEqual(frame.mainId, want.mainId, "\(name) frame \(t): main id")
                XCTAssertEqual(frame.sceneChange, want.sceneChange, "\(name) frame \(t): scene change")
            }
        }
    }

    /// A `height x width` label map with rectangles `(row0, row1, col0, col1)` labelled 1, 2, ... (later on top).
    func labels(_ height: Int, _ width: Int, _ boxes: [(Int, Int, Int, Int)]) -> [Int32] {
        var out = [Int32](repeating: 0, count: height * width)
        for (k, b) in boxes.enumerated() {
            for i in b.0..<b.1 { for j in b.2..<b.3 { out[i * width + j] = Int32(k + 1) } }
        }
        return out
    }

    func testBirthDeathAndIdsNeverReused() throws {
        let config = TrackerConfiguration(minHits: 3, maxAge: 1)
        let person = labels(10, 10, [(1, 6, 1, 4)]), nobody = labels(10, 10, [])
        var state = TrackerState()
        var seen: [[Int32]] = []
        for map in [person, person, person, nobody, nobody, person, person, person] {
            let (next, frame) = try Tracker.update(state, labels: map, height: 10, width: 10, configuration: config)
            state = next
            seen.append(frame.ids)
        }
        XCTAssertEqual(seen, [[0], [0], [1], [], [], [0], [0], [2]])
    }

    func testEqualIousGoToTheOlderTrack() throws {
        let config = TrackerConfiguration(tMatch: 0.1, minHits: 1)
        var (state, _) = try Tracker.update(TrackerState(), labels: labels(10, 10, [(0, 4, 0, 4), (0, 4, 4, 8)]),
                                            height: 10, width: 10, configuration: config)
        let frame: TrackedFrame
        (state, frame) = try Tracker.update(state, labels: labels(10, 10, [(0, 4, 2, 6)]), height: 10, width: 10,
                                            configuration: config)
        XCTAssertEqual(frame.ids, [1])
    }

    func testErrors() {
        XCTAssertThrowsError(try TrackerConfiguration(smoothing: 0).validate())
        XCTAssertThrowsError(try Tracker.update(TrackerState(), labels: [-1], height: 1, width: 1))
        XCTAssertThrowsError(try Tracker.update(TrackerState(), labels: [0, 0], height: 1, width: 1))
        XCTAssertThrowsError(try Tracker.smooth(TrackerState(), prob: [.nan], height: 1, width: 1,
                                                configuration: TrackerConfiguration()))
        XCTAssertThrowsError(try Tracker.update(TrackerState(), labels: [0], height: 1, width: 1, contentHeight: 0))
        XCTAssertEqual(try Tracker.update(TrackerState(), labels: [], height: 0, width: 5).frame.ids, [])
    }
}
