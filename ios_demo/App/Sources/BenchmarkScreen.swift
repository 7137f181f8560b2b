import BBEKit
import CoreGraphics
import SwiftUI

/// Runs model + grouper N times and exports docs/bench-format.md JSON through a ShareLink
/// (AirDrop/Files it to the computer, then `bbe-mobile bench --from-device FILE`).
struct BenchmarkScreen: View {
    @EnvironmentObject private var store: PredictorStore
    @State private var runs = 100
    @State private var warmup = 10
    @State private var progress: Double?
    @State private var stats: [BenchmarkRunner.Stat] = []
    @State private var exported: URL?
    @State private var error: String?

    var body: some View {
        NavigationStack {
            Form {
                Section("Settings") {
                    Stepper("Runs: \(runs)", value: $runs, in: 10...1000, step: 10)
                    Stepper("Warm-up: \(warmup)", value: $warmup, in: 0...100, step: 5)
                    Text("Device: \(DeviceInfo.modelIdentifier)").foregroundStyle(.secondary)
                }
                Section {
                    Button(progress == nil ? "Run benchmark" : "Running…") { Task { await run() } }
                        .disabled(progress != nil)
                    if let progress { ProgressView(value: progress) }
                    if let error { Text(error).foregroundStyle(.red) }
                }
                if !stats.isEmpty {
                    Section("Results (ms)") {
                        ForEach(Array(stats.enumerated()), id: \.offset) { _, s in
                            HStack {
                                Text("\(s.kind) · \(s.name)").lineLimit(1)
                                Spacer()
                                Text(String(format: "%.2f / %.2f", s.percentile(0.5), s.percentile(0.9)))
                                    .monospacedDigit()
                            }
                        }
                        Text("median / p90").font(.caption).foregroundStyle(.secondary)
                    }
                }
                if let exported {
                    Section("Export") {
                        ShareLink(item: exported) { Label("Share JSON", systemImage: "square.and.arrow.up") }
                        Text("Then: bbe-mobile bench --from-device \(exported.lastPathComponent)")
                            .font(.caption.monospaced()).foregroundStyle(.secondary)
                    }
                }
            }
            .navigationTitle("Benchmark")
        }
    }

    private func run() async {
        progress = 0
        error = nil
        exported = nil
        let runner = BenchmarkRunner(runs: runs, warmup: warmup)
        do {
            let image = try Self.syntheticImage(width: 640, height: 480)
            let stats = try await store.withPredictor { predictor in
                try runner.run(predictor, image: image) { p in
                    DispatchQueue.main.async { self.progress = p }
                }
            }
            self.stats = stats
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("bbe-bench-\(DeviceInfo.modelIdentifier.replacingOccurrences(of: " ", with: "_")).json")
            try Data(runner.document(stats).utf8).write(to: url)
            exported = url
        } catch {
            self.error = error.localizedDescription
        }
        progress = nil
    }

    /// A deterministic test picture (the model's cost does not depend on the content).
    static func syntheticImage(width: Int, height: Int) throws -> CGImage {
        let info = CGImageAlphaInfo.noneSkipLast.rawValue
        guard let context = CGContext(data: nil, width: width, height: height, bitsPerComponent: 8, bytesPerRow: 0,
                                      space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: info) else {
            throw BBEKitError.imageConversion("cannot create the benchmark image")
        }
        let colors = [CGColor(red: 0.2, green: 0.3, blue: 0.5, alpha: 1), CGColor(red: 0.9, green: 0.8, blue: 0.6, alpha: 1)]
        if let gradient = CGGradient(colorsSpace: CGColorSpaceCreateDeviceRGB(), colors: colors as CFArray, locations: [0, 1]) {
            context.drawLinearGradient(gradient, start: .zero, end: CGPoint(x: width, y: height), options: [])
        }
        context.setFillColor(CGColor(red: 0.6, green: 0.2, blue: 0.2, alpha: 1))
        for k in 0..<4 {
            context.fillEllipse(in: CGRect(x: 60 + k * 140, y: 80, width: 90, height: 300))
        }
        guard let image = context.makeImage() else { throw BBEKitError.imageConversion("cannot render the benchmark image") }
        return image
    }
}
