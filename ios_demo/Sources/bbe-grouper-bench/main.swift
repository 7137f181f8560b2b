// bbe-grouper-bench: times the Swift grouper on the golden benchmark cases (bench_people != null), and the tracker
// on the golden sequence track_bench_129_10 (TrackerBench.swift), and prints
// the JSON of docs/bench-format.md (source "swift-grouper", device "host"). Exits non-zero if any run's
// labels differ from the golden labels. Build with `swift build -c release`.
import BBEGolden
import BBEGrouper
import Dispatch
import Foundation

struct Options {
    var golden = GoldenCase.defaultDirectory()
    var runs = 200
    var warmup = 20
    var out: String?
    var only: [String] = []
}

func usage() -> Never {
    let text = """
    usage: bbe-grouper-bench [--golden DIR] [--runs N] [--warmup N] [--out FILE] [--case NAME]...
      --golden DIR   golden vectors (default: \(GoldenCase.defaultDirectory().path))
      --runs N       timed runs per case (default 200)
      --warmup N     untimed runs first (default 20)
      --out FILE     also write the JSON to FILE
      --case NAME    only this benchmark case (repeatable)

    """
    FileHandle.standardError.write(Data(text.utf8))
    exit(2)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("bbe-grouper-bench: \(message)\n".utf8))
    exit(1)
}

func parseOptions() -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    func value(_ flag: String) -> String {
        guard let v = args.next() else { fail("\(flag) needs a value") }
        return v
    }
    while let arg = args.next() {
        switch arg {
        case "--golden": options.golden = URL(fileURLWithPath: value(arg), isDirectory: true)
        case "--runs":
            guard let n = Int(value(arg)), n > 0 else { fail("--runs must be a positive integer") }
            options.runs = n
        case "--warmup":
            guard let n = Int(value(arg)), n >= 0 else { fail("--warmup must be a non-negative integer") }
            options.warmup = n
        case "--out": options.out = value(arg)
        case "--case": options.only.append(value(arg))
        case "-h", "--help": usage()
        default: fail("unknown argument \(arg) (see --help)")
        }
    }
    return options
}

/// Linear-interpolated percentile of sorted values (NumPy's default), q in [0, 1].
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let upper = min(lower + 1, sorted.count - 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
}

func number(_ v: Double) -> String { String(format: "%.6f", v) }

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

let options = parseOptions()
let names: [String]
do {
    names = try GoldenCase.caseNames(in: options.golden)
} catch {
    fail("\(error) (pass --golden DIR)")
}

var results: [String] = []
var checked = 0
for name in names where options.only.isEmpty || options.only.contains(name) {
    let golden: GoldenCase
    do {
        golden = try GoldenCase(name: name, directory: options.golden)
    } catch {
        fail("cannot load golden case \(name): \(error)")
    }
    guard let people = golden.benchPeople else { continue }
    let grouper = Grouper(configuration: golden.configuration)
    var times = [Double]()
    times.reserveCapacity(options.runs)
    do {
        try golden.prob.withUnsafeBufferPointer { prob in
            try golden.offsets.withUnsafeBufferPointer { offsets in
                func once() throws -> GrouperResult {
                    try grouper.group(prob: prob, offsets: offsets, height: golden.height, width: golden.width,
                                      stride: golden.stride)
                }
                for _ in 0..<options.warmup {
                    _ = try once()
                }
                var last: GrouperResult?
                for _ in 0..<options.runs {
                    let start = DispatchTime.now().uptimeNanoseconds
                    let result = try once()
                    let end = DispatchTime.now().uptimeNanoseconds
                    times.append(Double(end - start) / 1e6)
                    last = result
                }
                guard let last, last.labels == golden.labels, last.count == golden.scores.count else {
                    fail("\(name): labels differ from the golden labels")
                }
                for (box, expected) in zip(last.boxes, golden.boxes) {
                    for (got, want) in zip(box.array, expected) where abs(Double(got) - want) > golden.tolerance {
                        fail("\(name): box coordinate \(got) differs from the golden \(want)")
                    }
                }
                for (got, want) in zip(last.scores, golden.scores) where abs(Double(got) - want) > golden.tolerance {
                    fail("\(name): score \(got) differs from the golden \(want)")
                }
            }
        }
    } catch {
        fail("\(name): \(error)")
    }
    checked += 1
    let sorted = times.sorted()
    let median = percentile(sorted, 0.5), p90 = percentile(sorted, 0.9)
    FileHandle.standardError.write(Data(
        "\(name): median \(number(median)) ms, p90 \(number(p90)) ms, min \(number(sorted[0])) ms, \(golden.scores.count) instances\n".utf8))
    results.append("""
        {"kind": "grouper", "name": \(jsonString(name)), "height": \(golden.height), "width": \(golden.width), \
    "people": \(people), "instances": \(golden.scores.count), "median_ms": \(number(median)), \
    "p90_ms": \(number(p90)), "min_ms": \(number(sorted[0]))}
    """)
}
if checked == 0 {
    fail("no benchmark case (bench_people != null) found in \(options.golden.path)")
}
if options.only.isEmpty, let row = trackerRow(golden: options.golden, runs: options.runs, warmup: options.warmup) {
    results.append(row)
}

let json = """
{
  "format": "bbe-bench/1",
  "source": "swift-grouper",
  "device": "host",
  "runs": \(options.runs),
  "warmup": \(options.warmup),
  "results": [
\(results.joined(separator: ",\n"))
  ]
}

"""
print(json, terminator: "")
if let out = options.out {
    do {
        try Data(json.utf8).write(to: URL(fileURLWithPath: out))
    } catch {
        fail("cannot write \(out): \(error.localizedDescription)")
    }
}
