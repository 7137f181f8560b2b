#if canImport(CoreML) && canImport(CoreGraphics) && canImport(CoreVideo)
import BBEGrouper
import CoreGraphics
import CoreImage
import CoreML
import CoreVideo
import Foundation

/// Letterboxes images for the model (docs/grouper.md): resized by `scale = S / max(h0, w0)` with bilinear
/// (`.medium` interpolation), placed at the **top-left** of an `S x S` black canvas.
public final class ImagePreprocessor {
    /// Canvas side `S` (the metadata's `input_size`).
    public let side: Int
    private let ciContext = CIContext(options: [.cacheIntermediates: false])
    private var pool: CVPixelBufferPool?

    public init(side: Int) {
        self.side = side
    }

    /// A camera frame or any pixel buffer as a `CGImage`, rotated by `orientation` (camera buffers are
    /// landscape: pass `.right` for a portrait back camera).
    public func cgImage(from pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up) throws -> CGImage {
        let image = CIImage(cvPixelBuffer: pixelBuffer).oriented(orientation)
        guard let cg = ciContext.createCGImage(image, from: image.extent) else {
            throw BBEKitError.imageConversion("CIContext could not render the pixel buffer")
        }
        return cg
    }

    /// The letterbox geometry of `image` (Python's `Letterbox.fit`).
    public func geometry(of image: CGImage) throws -> LetterboxGeometry {
        try LetterboxGeometry.fit(imageHeight: image.height, imageWidth: image.width, size: side)
    }

    /// Draws `image` at the top-left of a black `S x S` 32BGRA pixel buffer (for image-typed model inputs).
    public func letterboxPixelBuffer(_ image: CGImage) throws -> (CVPixelBuffer, LetterboxGeometry) {
        let box = try geometry(of: image)
        let buffer = try makePixelBuffer()
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw BBEKitError.imageConversion("pixel buffer has no base address")
        }
        let bytesPerRow = CVPixelBufferGetBytesPerRow(buffer)
        memset(base, 0, bytesPerRow * side)
        let info = CGBitmapInfo.byteOrder32Little.rawValue | CGImageAlphaInfo.noneSkipFirst.rawValue
        guard let context = CGContext(data: base, width: side, height: side, bitsPerComponent: 8,
                                      bytesPerRow: bytesPerRow, space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: info) else {
            throw BBEKitError.imageConversion("cannot create a bitmap context of \(side) x \(side)")
        }
        draw(image, box, in: context)
        return (buffer, box)
    }

    /// The letterbox as an NHWC float32 `MLMultiArray` `(1, S, S, 3)` with RGB values mapped to `range`
    /// (the metadata's `input_range`, `[0, 255]` by default), for tensor-typed model inputs.
    public func letterboxMultiArray(_ image: CGImage, range: [Double] = [0, 255]) throws -> (MLMultiArray, LetterboxGeometry) {
        let box = try geometry(of: image)
        let bytesPerRow = side * 4
        var rgba = [UInt8](repeating: 0, count: bytesPerRow * side)
        let info = CGImageAlphaInfo.noneSkipLast.rawValue | CGBitmapInfo.byteOrder32Big.rawValue
        try rgba.withUnsafeMutableBytes { raw in
            guard let context = CGContext(data: raw.baseAddress, width: side, height: side, bitsPerComponent: 8,
                                          bytesPerRow: bytesPerRow, space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: info) else {
                throw BBEKitError.imageConversion("cannot create a bitmap context of \(side) x \(side)")
            }
            draw(image, box, in: context)
        }
        let array = try MLMultiArray(shape: [1, NSNumber(value: side), NSNumber(value: side), 3], dataType: .float32)
        let lo = Float(range.first ?? 0), hi = Float(range.count > 1 ? range[1] : 255)
        let factor = (hi - lo) / 255
        let strides = array.strides.map(\.intValue)
        array.withUnsafeMutableBytes { raw, _ in
            let out = raw.bindMemory(to: Float.self)
            for y in 0..<side {
                for x in 0..<side {
                    let src = y * bytesPerRow + x * 4
                    let dst = y * strides[1] + x * strides[2]
                    for c in 0..<3 {
                        out[dst + c * strides[3]] = lo + Float(rgba[src + c]) * factor
                    }
                }
            }
        }
        return (array, box)
    }

    /// Core Graphics' origin is bottom-left: the top-left placement is at `y = S - contentHeight`.
    private func draw(_ image: CGImage, _ box: LetterboxGeometry, in context: CGContext) {
        context.setFillColor(CGColor(red: 0, green: 0, blue: 0, alpha: 1))
        context.fill(CGRect(x: 0, y: 0, width: side, height: side))
        context.interpolationQuality = .medium  // bilinear
        context.draw(image, in: CGRect(x: 0, y: side - box.contentHeight, width: box.contentWidth, height: box.contentHeight))
    }

    private func makePixelBuffer() throws -> CVPixelBuffer {
        if pool == nil {
            let attributes: [String: Any] = [
                kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA,
                kCVPixelBufferWidthKey as String: side,
                kCVPixelBufferHeightKey as String: side,
                kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any](),
            ]
            CVPixelBufferPoolCreate(nil, nil, attributes as CFDictionary, &pool)
        }
        var buffer: CVPixelBuffer?
        if let pool {
            CVPixelBufferPoolCreatePixelBuffer(nil, pool, &buffer)
        }
        guard let buffer else {
            throw BBEKitError.imageConversion("cannot allocate a \(side) x \(side) pixel buffer")
        }
        return buffer
    }
}
#endif
