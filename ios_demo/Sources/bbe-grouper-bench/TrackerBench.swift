// The tracker row of bbe-grouper-bench: smoothing + tracking (docs/tracker.md) per frame of the golden
// benchmark sequence (129x129 maps, 10 people), grouper excluded (its labels come from the golden file).
import BBEGolden
import BBEGrouper
import Dispatch
import Foundation

/// Times one pass over `sequence` from a fresh state per run and returns the per-frame times (ms); fails when
/// the IDs differ from the golden ones.
func timeTracker(_ sequence: GoldenTrackingSequence, runs: Int, warmup: Int) -> [Double] {
    let cells = sequence.height * sequence.width
    let probs = (0..<sequence.frames).map { sequence.frame(sequence.prob, $0, perFrame: cells) }
    let labels = (0..<sequence.frames).map { sequence.frame(sequence.labels, $0, perFrame: cells) }
    func pass() throws -> [TrackedFrame] {
        var state = TrackerState()
        var frames: [TrackedFrame] = []
        for t in 0..<sequence.frames {
            let (smoothed, _) = try Tracker.smooth(state, prob: probs[t], height: sequence.height,
                                                   width: sequence.width, configuration: sequence.tracker)
            state.smoothed = smoothed
            state.smoothedHeight = sequence.height
            state.smoothedWidth = sequence.width
            let frame: TrackedFrame
            (state, frame) = try Tracker.update(state, labels: labels[t], height: sequence.height,
                                                width: sequence.width, contentHeight: sequence.contentHeight,
                                                contentWidth: sequence.contentWidth, configuration: sequence.tracker)
            frames.append(frame)
        }
        return frames
    }
    var times: [Double] = []
    do {
        for _ in 0..<warmup { _ = try pass() }
        var last: [TrackedFrame] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            last = try pass()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(sequence.frames))
        }
        for (t, (got, want)) in zip(last, sequence.expected).enumerated()
            where got.ids != want.ids || got.mainId != want.mainId {
            fail("\(sequence.name) frame \(t): tracker IDs differ from the golden ones")
        }
    } catch {
        fail("\(sequence.name): \(error)")
    }
    return times
}

/// The bbe-bench/1 row of the tracker on the golden benchmark sequence, or nil when the golden directory has none.
func trackerRow(golden: URL, runs: Int, warmup: Int) -> String? {
    let name = "track_bench_129_10"
    guard (try? GoldenTrackingSequence.names(in: golden))?.contains(name) == true else { return nil }
    let sequence: GoldenTrackingSequence
    do {
        sequence = try GoldenTrackingSequence(name: name, directory: golden)
    } catch {
        fail("cannot load golden sequence \(name): \(error)")
    }
    let sorted = timeTracker(sequence, runs: runs, warmup: warmup).sorted()
    let median = percentile(sorted, 0.5), p90 = percentile(sorted, 0.9)
    FileHandle.standardError.write(Data(
        "\(name) (tracker + smoothing per frame): median \(number(median)) ms, p90 \(number(p90)) ms\n".utf8))
    return """
        {"kind": "tracker", "name": \(jsonString(name)), "height": \(sequence.height), "width": \(sequence.width), \
    "people": 10, "frames": \(sequence.frames), "median_ms": \(number(median)), "p90_ms": \(number(p90)), \
    "min_ms": \(number(sorted[0]))}
    """
}
