import BBEGrouper
import BBEKit
import CoreGraphics
import SwiftUI

/// One colour per person, cycling through a fixed palette.
enum Palette {
    static let rgb: [(UInt8, UInt8, UInt8)] = [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
        (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
        (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
        (0, 0, 128), (128, 128, 128),
    ]

    static func color(_ label: Int) -> Color {
        let c = rgb[(label - 1) % rgb.count]
        return Color(red: Double(c.0) / 255, green: Double(c.1) / 255, blue: Double(c.2) / 255)
    }

    /// A person not yet confirmed by the tracker, and everyone but the main person in main-person mode.
    static let tentative: (UInt8, UInt8, UInt8) = (160, 160, 160)
    static let dimmed: (UInt8, UInt8, UInt8) = (48, 48, 48)

    /// RGB of each instance: by instance number without tracking; by person ID with it (a person keeps their
    /// colour across frames), grey while tentative, dark grey for the others when `mainOnly`.
    static func instanceColors(_ prediction: BBEPrediction, mainOnly: Bool) -> [(UInt8, UInt8, UInt8)] {
        prediction.instances.indices.map { k in
            guard let tracked = prediction.tracked, k < tracked.ids.count else { return rgb[k % rgb.count] }
            let id = Int(tracked.ids[k])
            if mainOnly && id != tracked.mainId { return dimmed }
            return id == 0 ? tentative : rgb[(id - 1) % rgb.count]
        }
    }
}

enum OverlayRenderer {
    /// A translucent RGBA image of a label map (`height * width` labels, 0 = transparent); label `k` takes
    /// `colors[k - 1]` (default: the palette by label).
    static func maskImage(labels: [Int32], width: Int, height: Int, alpha: UInt8 = 140,
                          colors: [(UInt8, UInt8, UInt8)]? = nil) -> CGImage? {
        guard width > 0, height > 0, labels.count == width * height else { return nil }
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        for k in 0..<labels.count where labels[k] > 0 {
            let label = Int(labels[k])
            let c = colors.map { label <= $0.count ? $0[label - 1] : Palette.tentative }
                ?? Palette.rgb[(label - 1) % Palette.rgb.count]
            let a = Float(alpha) / 255  // premultiplied
            pixels[4 * k] = UInt8(Float(c.0) * a)
            pixels[4 * k + 1] = UInt8(Float(c.1) * a)
            pixels[4 * k + 2] = UInt8(Float(c.2) * a)
            pixels[4 * k + 3] = alpha
        }
        let data = Data(pixels) as CFData
        guard let provider = CGDataProvider(data: data) else { return nil }
        return CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 32, bytesPerRow: width * 4,
                       space: CGColorSpaceCreateDeviceRGB(),
                       bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.premultipliedLast.rawValue),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)
    }

    /// The mask of a prediction at a display resolution of at most `maxSide` pixels: the labels are upsampled
    /// through the same letterbox mapping (docs/grouper.md) to a smaller copy of the image, which is cheaper
    /// than the full image size for live video.
    static func displayMask(_ prediction: BBEPrediction, stride: Double, maxSide: Int = 480,
                            mainOnly: Bool = false) -> CGImage? {
        let h0 = prediction.imageHeight, w0 = prediction.imageWidth
        let f = min(1, Double(maxSide) / Double(max(h0, w0)))
        let h = max(1, Int((Double(h0) * f).rounded())), w = max(1, Int((Double(w0) * f).rounded()))
        // Same canvas, smaller image: input px per display px = scale / f.
        let geometry = LetterboxGeometry(imageHeight: h, imageWidth: w, scale: prediction.letterbox.scale / f,
                                         contentHeight: prediction.letterbox.contentHeight,
                                         contentWidth: prediction.letterbox.contentWidth,
                                         side: prediction.letterbox.side)
        guard let labels = try? prediction.grouped.labelsToImage(geometry, stride: stride) else { return nil }
        return maskImage(labels: labels, width: w, height: h,
                         colors: Palette.instanceColors(prediction, mainOnly: mainOnly))
    }
}

/// Masks and boxes drawn over an image of `imageSize` shown with `.scaledToFit`.
struct InstancesOverlay: View {
    let prediction: BBEPrediction
    let mask: CGImage?
    var mainOnly = false

    var body: some View {
        GeometryReader { proxy in
            let size = CGSize(width: prediction.imageWidth, height: prediction.imageHeight)
            let s = min(proxy.size.width / size.width, proxy.size.height / size.height)
            let origin = CGPoint(x: (proxy.size.width - size.width * s) / 2, y: (proxy.size.height - size.height * s) / 2)
            ZStack(alignment: .topLeading) {
                if let mask {
                    Image(decorative: mask, scale: 1)
                        .resizable()
                        .interpolation(.none)
                        .frame(width: size.width * s, height: size.height * s)
                        .offset(x: origin.x, y: origin.y)
                }
                let colors = Palette.instanceColors(prediction, mainOnly: mainOnly).map {
                    Color(red: Double($0.0) / 255, green: Double($0.1) / 255, blue: Double($0.2) / 255)
                }
                ForEach(prediction.instances) { instance in
                    let b = instance.box
                    Rectangle()
                        .stroke(colors[instance.id - 1], lineWidth: 2)
                        .frame(width: CGFloat(b.width) * s, height: CGFloat(b.height) * s)
                        .offset(x: origin.x + CGFloat(b.x1) * s, y: origin.y + CGFloat(b.y1) * s)
                    Text(String(format: "%.2f", instance.score))
                        .font(.caption2.monospacedDigit())
                        .padding(2)
                        .background(colors[instance.id - 1])
                        .offset(x: origin.x + CGFloat(b.x1) * s, y: origin.y + CGFloat(b.y1) * s)
                }
            }
        }
        .allowsHitTesting(false)
    }
}

/// FPS and per-stage timings.
struct TimingsView: View {
    let timings: BBETimings
    let fps: Double?

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            if let fps { Text(String(format: "%.1f FPS", fps)).bold() }
            Text(String(format: "preprocess %.1f ms", timings.preprocess))
            Text(String(format: "model %.1f ms", timings.model))
            Text(String(format: "grouper %.2f ms", timings.grouper))
            Text(String(format: "upsample %.2f ms", timings.upsample))
            Text(String(format: "total %.1f ms", timings.total)).bold()
        }
        .font(.caption.monospacedDigit())
        .padding(6)
        .background(.ultraThinMaterial, in: RoundedRectangle(cornerRadius: 8))
    }
}
