import BBEGrouper
import BBEKit
import PhotosUI
import SwiftUI

/// Pick a photo, segment it at full resolution.
struct PhotoScreen: View {
    @EnvironmentObject private var store: PredictorStore
    @State private var item: PhotosPickerItem?
    @State private var image: CGImage?
    @State private var prediction: BBEPrediction?
    @State private var mask: CGImage?
    @State private var error: String?

    var body: some View {
        NavigationStack {
            VStack {
                ZStack(alignment: .topLeading) {
                    if let image {
                        Image(decorative: image, scale: 1).resizable().scaledToFit()
                            .frame(maxWidth: .infinity, maxHeight: .infinity)
                        if let prediction {
                            InstancesOverlay(prediction: prediction, mask: mask)
                        }
                    } else {
                        Text("Pick a photo with people").foregroundStyle(.secondary)
                            .frame(maxWidth: .infinity, maxHeight: .infinity)
                    }
                }
                if let prediction {
                    HStack {
                        Text("\(prediction.instances.count) people")
                        Spacer()
                        TimingsView(timings: prediction.timings, fps: nil)
                    }.padding(.horizontal)
                }
                if let error { Text(error).foregroundStyle(.red).font(.footnote) }
            }
            .navigationTitle("Photo")
            .toolbar {
                PhotosPicker(selection: $item, matching: .images) { Label("Pick", systemImage: "photo.on.rectangle") }
            }
            .onChange(of: item) { newItem in
                Task { await segment(newItem) }
            }
        }
    }

    private func segment(_ item: PhotosPickerItem?) async {
        guard let item else { return }
        do {
            guard let data = try await item.loadTransferable(type: Data.self),
                  let ui = UIImage(data: data), let cg = ui.normalizedCGImage() else {
                error = "Cannot read the picked image."
                return
            }
            image = cg
            prediction = nil
            mask = nil
            let result = try await store.withPredictor { predictor -> (BBEPrediction, CGImage?) in
                predictor.configuration.upsampleLabels = true
                predictor.tracker = nil  // a single photo: no tracking (the camera starts a new stream)
                let p = try predictor.predict(cg)
                return (p, OverlayRenderer.maskImage(labels: p.labels, width: p.imageWidth, height: p.imageHeight))
            }
            prediction = result.0
            mask = result.1
            error = nil
        } catch {
            self.error = error.localizedDescription
        }
    }
}

extension UIImage {
    /// The image redrawn upright (photos carry an EXIF orientation that CGImage ignores).
    func normalizedCGImage() -> CGImage? {
        if imageOrientation == .up, let cg = cgImage { return cg }
        let format = UIGraphicsImageRendererFormat.default()
        format.scale = 1
        return UIGraphicsImageRenderer(size: size, format: format).image { _ in draw(at: .zero) }.cgImage
    }
}
