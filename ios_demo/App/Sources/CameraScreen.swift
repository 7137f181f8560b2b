import AVFoundation
import BBEGrouper
import BBEKit
import SwiftUI

/// Owns the AVCaptureSession; frames are dropped while the previous one is still being segmented.
final class CameraController: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    @Published var prediction: BBEPrediction?
    @Published var mask: CGImage?
    @Published var frame: CGImage?
    @Published var fps: Double = 0
    @Published var error: String?
    /// Main-person mode: everyone but the main person dimmed (read on the capture queue, set on the main one).
    @Published var mainOnly = false

    let session = AVCaptureSession()
    private let output = AVCaptureVideoDataOutput()
    private let captureQueue = DispatchQueue(label: "bbe.camera")
    private var busy = false  // touched on captureQueue only
    private var lastFrame: DispatchTime?
    private weak var store: PredictorStore?

    func start(store: PredictorStore) {
        self.store = store
        AVCaptureDevice.requestAccess(for: .video) { granted in
            guard granted else {
                DispatchQueue.main.async { self.error = "Camera access denied (Settings > Privacy > Camera)." }
                return
            }
            self.captureQueue.async { self.configureAndRun() }
        }
    }

    func stop() {
        captureQueue.async { if self.session.isRunning { self.session.stopRunning() } }
    }

    private func configureAndRun() {
        if session.inputs.isEmpty {
            session.beginConfiguration()
            session.sessionPreset = .hd1280x720
            guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
                  let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
                session.commitConfiguration()
                DispatchQueue.main.async { self.error = "No back camera available." }
                return
            }
            session.addInput(input)
            output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
            output.alwaysDiscardsLateVideoFrames = true
            output.setSampleBufferDelegate(self, queue: captureQueue)
            if session.canAddOutput(output) { session.addOutput(output) }
            session.commitConfiguration()
        }
        if !session.isRunning { session.startRunning() }
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard !busy, let pixelBuffer = CMSampleBufferGetImageBuffer(sampleBuffer), let store else { return }
        busy = true
        let now = DispatchTime.now()
        if let last = lastFrame {
            let dt = Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e9
            let instant = dt > 0 ? 1 / dt : 0
            DispatchQueue.main.async { self.fps = self.fps == 0 ? instant : 0.9 * self.fps + 0.1 * instant }
        }
        lastFrame = now
        Task {
            defer { self.captureQueue.async { self.busy = false } }
            do {
                // Portrait back camera: the sensor buffer is landscape, rotate it upright first.
                let mainOnly = await MainActor.run { self.mainOnly }
                let result = try await store.withPredictor { predictor -> (BBEPrediction, CGImage?, CGImage?) in
                    predictor.configuration.upsampleLabels = false
                    if predictor.tracker == nil { predictor.tracker = TrackerState() }  // a camera stream: track it
                    let start = DispatchTime.now().uptimeNanoseconds
                    let frame = try predictor.image(from: pixelBuffer, orientation: .right)
                    let convert = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
                    var prediction = try predictor.predict(frame)
                    prediction.timings.preprocess += convert  // pixel buffer -> upright image
                    let t = DispatchTime.now().uptimeNanoseconds
                    let mask = OverlayRenderer.displayMask(prediction, stride: predictor.metadata.stride,
                                                           mainOnly: mainOnly)
                    prediction.timings.upsample += Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6
                    return (prediction, mask, frame)
                }
                await MainActor.run {
                    self.prediction = result.0
                    self.mask = result.1
                    self.frame = result.2
                    self.error = nil
                }
            } catch {
                await MainActor.run { self.error = error.localizedDescription }
            }
        }
    }
}

struct CameraScreen: View {
    @EnvironmentObject private var store: PredictorStore
    @StateObject private var camera = CameraController()

    var body: some View {
        ZStack(alignment: .topLeading) {
            Color.black.ignoresSafeArea()
            if let frame = camera.frame {
                Image(decorative: frame, scale: 1).resizable().scaledToFit()
                    .frame(maxWidth: .infinity, maxHeight: .infinity)
            }
            if let prediction = camera.prediction {
                InstancesOverlay(prediction: prediction, mask: camera.mask, mainOnly: camera.mainOnly)
                TimingsView(timings: prediction.timings, fps: camera.fps).padding()
                VStack {
                    Spacer()
                    Toggle("Main person", isOn: $camera.mainOnly)
                        .fixedSize()
                        .padding(8)
                        .background(.ultraThinMaterial, in: RoundedRectangle(cornerRadius: 8))
                }
                .frame(maxWidth: .infinity, alignment: .trailing)
                .padding()
            }
            StatusBanner(error: camera.error)
        }
        .onAppear { camera.start(store: store) }
        .onDisappear { camera.stop() }
    }
}

/// Model loading state and errors.
struct StatusBanner: View {
    @EnvironmentObject private var store: PredictorStore
    var error: String?

    var body: some View {
        VStack {
            Spacer()
            switch store.state {
            case .loading: ProgressView("Loading model…").tint(.white).foregroundStyle(.white)
            case let .failed(message): banner(message)
            case .ready: if let error { banner(error) }
            }
        }
        .frame(maxWidth: .infinity)
        .padding()
    }

    private func banner(_ text: String) -> some View {
        Text(text).font(.footnote).padding(8).background(.red.opacity(0.8), in: RoundedRectangle(cornerRadius: 8))
            .foregroundStyle(.white)
    }
}
