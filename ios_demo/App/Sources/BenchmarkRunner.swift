import BBEGrouper
import BBEKit
import CoreGraphics
import CoreML
import Foundation

/// Times model, grouper and the whole pipeline N times and writes docs/bench-format.md JSON
/// (`source: "ios-app"`), read by `bbe-mobile bench --from-device FILE`.
struct BenchmarkRunner {
    struct Stat {
        var kind: String
        var name: String
        var extra: [(String, String)] = []  // already JSON-encoded values
        var times: [Double]

        func percentile(_ q: Double) -> Double {
            let sorted = times.sorted()
            let position = q * Double(sorted.count - 1)
            let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
            return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
        }
    }

    var runs: Int
    var warmup: Int

    /// Runs on the caller's thread (the predictor queue). `image` is the picture for model/total; the
    /// golden benchmark cases bundled with the app (tests/golden/bench_*) time the grouper alone.
    func run(_ predictor: BBEPredictor, image: CGImage, progress: (Double) -> Void) throws -> [Stat] {
        var stats: [Stat] = []
        let steps = Double(runs + warmup)
        func time(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }

        // Model: one forward pass, input already prepared.
        predictor.tracker = nil  // the grouper alone, as the bench rows say (the camera starts a new stream)
        let (input, letterbox) = try predictor.prepare(image)
        var model: [Double] = [], preprocess: [Double] = [], grouper: [Double] = [], upsample: [Double] = []
        var total: [Double] = []
        var outputs = try predictor.runModel(input)
        var grouped = try predictor.group(outputs)
        for k in 0..<(warmup + runs) {
            let tPre = try time { _ = try predictor.prepare(image) }
            let tModel = try time { outputs = try predictor.runModel(input) }
            let tGroup = try time { grouped = try predictor.group(outputs) }
            let tUp = try time { _ = try grouped.labelsToImage(letterbox, stride: predictor.metadata.stride) }
            let tTotal = try time {
                predictor.configuration.upsampleLabels = true
                _ = try predictor.predict(image)
            }
            if k >= warmup {
                preprocess.append(tPre)
                model.append(tModel)
                grouper.append(tGroup)
                upsample.append(tUp)
                total.append(tTotal)
            }
            progress(Double(k + 1) / steps * 0.8)
        }
        let meta = predictor.metadata
        stats.append(Stat(kind: "model", name: predictor.model.name,
                          extra: [("precision", json(meta.precision)),
                                  ("compute_units", json(predictor.model.computeUnits.benchName)),
                                  ("input_size", "\(meta.inputSize)")], times: model))
        stats.append(Stat(kind: "preprocess", name: "letterbox", extra: [("image", json("\(image.width)x\(image.height)"))],
                          times: preprocess))
        stats.append(Stat(kind: "grouper", name: "camera", extra: [("height", "\(grouped.height)"), ("width", "\(grouped.width)"),
                                                                   ("instances", "\(grouped.count)")], times: grouper))
        stats.append(Stat(kind: "upsample", name: "labels_to_image", times: upsample))
        stats.append(Stat(kind: "total", name: predictor.model.name, times: total))

        // Grouper alone on the golden benchmark cases (same inputs as `bbe-grouper-bench` on the host).
        let cases = BundledGoldenCase.all()
        for (n, golden) in cases.enumerated() {
            let g = Grouper(configuration: golden.configuration)
            var times: [Double] = []
            for k in 0..<(warmup + runs) {
                let t = try time {
                    _ = try g.group(prob: golden.prob, offsets: golden.offsets, height: golden.height, width: golden.width,
                                    stride: golden.stride)
                }
                if k >= warmup { times.append(t) }
            }
            stats.append(Stat(kind: "grouper", name: golden.name,
                              extra: [("height", "\(golden.height)"), ("width", "\(golden.width)"), ("people", "\(golden.people)")],
                              times: times))
            progress(0.8 + 0.2 * Double(n + 1) / Double(max(cases.count, 1)))
        }
        return stats
    }

    /// The bbe-bench/1 document.
    func document(_ stats: [Stat]) -> String {
        let results = stats.map { s -> String in
            var fields = [("kind", json(s.kind)), ("name", json(s.name))] + s.extra
            fields += [("median_ms", number(s.percentile(0.5))), ("p90_ms", number(s.percentile(0.9))),
                       ("min_ms", number(s.times.min() ?? 0))]
            return "    {" + fields.map { "\(json($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }
        return """
        {
          "format": "bbe-bench/1",
          "source": "ios-app",
          "device": \(json(DeviceInfo.modelIdentifier)),
          "runs": \(runs),
          "warmup": \(warmup),
          "results": [
        \(results.joined(separator: ",\n"))
          ]
        }

        """
    }

    private func number(_ v: Double) -> String { String(format: "%.6f", v) }

    private func json(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [])
        let array = data.flatMap { String(data: $0, encoding: .utf8) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }
}

/// A golden benchmark case copied into the app bundle from tests/golden (see project.yml).
struct BundledGoldenCase {
    var name: String
    var height: Int
    var width: Int
    var stride: Double
    var people: Int
    var configuration: GrouperConfiguration
    var prob: [Float]
    var offsets: [Float]

    static func all(bundle: Bundle = .main) -> [BundledGoldenCase] {
        let urls = (bundle.urls(forResourcesWithExtension: "json", subdirectory: nil) ?? [])
            .filter { $0.lastPathComponent.hasPrefix("bench_") }
        return urls.compactMap { try? BundledGoldenCase(url: $0) }
            .sorted { ($0.height, $0.people) < ($1.height, $1.people) }
    }

    init(url: URL) throws {
        let object = try MetadataReader.object(fromJSON: String(decoding: try Data(contentsOf: url), as: UTF8.self))
        let m = MetadataReader(object)
        name = try m.string("name")
        height = try m.int("height")
        width = try m.int("width")
        stride = try m.double("stride")
        people = try m.int("bench_people")
        guard let config = object["config"] as? [String: Any] else { throw BBEGrouperError.badMetadata("missing key \"config\"") }
        configuration = try GrouperConfiguration(metadata: config)
        let directory = url.deletingLastPathComponent()
        func floats(_ key: String, _ count: Int) throws -> [Float] {
            let data = try Data(contentsOf: directory.appendingPathComponent(try m.string(key)))
            guard data.count == count * 4 else { throw BBEGrouperError.shapeMismatch("\(key): \(data.count) bytes") }
            return data.withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        }
        prob = try floats("prob_file", height * width)
        offsets = try floats("offsets_file", height * width * 4)
    }
}
