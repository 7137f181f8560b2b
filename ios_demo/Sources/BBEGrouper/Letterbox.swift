import Foundation

/// Geometry of the top-left letterbox every path uses (docs/grouper.md, "Letterbox and upsampling").
///
/// The image `(h0, w0)` is resized by `scale = size / max(h0, w0)` to
/// `(round(h0 * scale), round(w0 * scale))` (round half to even, at least 1, as Python's `round`) and placed
/// at the top-left corner of a square canvas of ``side`` pixels, the rest black.
/// Input pixel coordinates and original pixel coordinates are related by `x_input = x_orig * scale`.
public struct LetterboxGeometry: Equatable, Sendable {
    /// Original image height `h0`.
    public var imageHeight: Int
    /// Original image width `w0`.
    public var imageWidth: Int
    /// Input pixels per original pixel.
    public var scale: Double
    /// Height of the resized image on the canvas.
    public var contentHeight: Int
    /// Width of the resized image on the canvas.
    public var contentWidth: Int
    /// Canvas side: `size` rounded up to a multiple of 16 (equal to `size` for the model's `input_size`).
    public var side: Int

    /// Creates a geometry from explicit values (e.g. a golden case's `scale`).
    public init(imageHeight: Int, imageWidth: Int, scale: Double, contentHeight: Int, contentWidth: Int, side: Int) {
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.scale = scale
        self.contentHeight = contentHeight
        self.contentWidth = contentWidth
        self.side = side
    }

    /// The letterbox of an `imageHeight x imageWidth` image into a canvas of `size` (the model's `input_size`).
    ///
    /// - Throws: ``BBEGrouperError/invalidConfiguration(_:)`` for an empty image or `size <= 0`.
    public static func fit(imageHeight: Int, imageWidth: Int, size: Int) throws -> LetterboxGeometry {
        guard imageHeight > 0, imageWidth > 0 else {
            throw BBEGrouperError.invalidConfiguration("image must be non-empty, got \(imageHeight) x \(imageWidth)")
        }
        guard size > 0 else {
            throw BBEGrouperError.invalidConfiguration("letterbox size must be positive, got \(size)")
        }
        let scale = Double(size) / Double(max(imageHeight, imageWidth))
        let h = max(1, Int((Double(imageHeight) * scale).rounded(.toNearestOrEven)))
        let w = max(1, Int((Double(imageWidth) * scale).rounded(.toNearestOrEven)))
        let side = (size + 15) / 16 * 16
        return LetterboxGeometry(imageHeight: imageHeight, imageWidth: imageWidth, scale: scale,
                                 contentHeight: h, contentWidth: w, side: side)
    }

    /// An input-pixel box mapped to the original image: each coordinate divided by ``scale`` (Double),
    /// x clipped to `[0, w0]`, y to `[0, h0]`, rounded to Float.
    public func boxToImage(_ box: Box) -> Box {
        let s = scale, w0 = Double(imageWidth), h0 = Double(imageHeight)
        func cx(_ v: Float) -> Float { Float(min(max(Double(v) / s, 0), w0)) }
        func cy(_ v: Float) -> Float { Float(min(max(Double(v) / s, 0), h0)) }
        return Box(x1: cx(box.x1), y1: cy(box.y1), x2: cx(box.x2), y2: cy(box.y2))
    }

    /// ``boxToImage(_:)`` for every box.
    public func boxesToImage(_ boxes: [Box]) -> [Box] {
        boxes.map(boxToImage)
    }

    /// The label map `(height, width)` at `stride` upsampled to the original image `(h0, w0)`, nearest cell:
    /// pixel `(v, u)` takes `labels[i, j]` with `j = floor((u + 0.5) * scale / stride)` and
    /// `i = floor((v + 0.5) * scale / stride)`, clamped to the map (Double arithmetic).
    ///
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` if `labels.count != height * width`, or the map is
    ///   empty while the image is not; ``BBEGrouperError/invalidConfiguration(_:)`` for a bad stride.
    public func labelsToImage(_ labels: [Int32], height: Int, width: Int, stride: Double) throws -> [Int32] {
        guard labels.count == height * width, height >= 0, width >= 0 else {
            throw BBEGrouperError.shapeMismatch(
                "labels has \(labels.count) values, expected height * width = \(height) * \(width)")
        }
        guard stride.isFinite, stride > 0 else {
            throw BBEGrouperError.invalidConfiguration("stride must be finite and > 0, got \(stride)")
        }
        guard scale.isFinite, scale > 0 else {
            throw BBEGrouperError.invalidConfiguration("scale must be finite and > 0, got \(scale)")
        }
        let h0 = imageHeight, w0 = imageWidth
        if h0 == 0 || w0 == 0 { return [] }
        guard height > 0, width > 0 else {
            throw BBEGrouperError.shapeMismatch("cannot upsample an empty \(height) x \(width) label map")
        }
        let factor = scale
        var cols = [Int](repeating: 0, count: w0)
        for u in 0..<w0 {
            cols[u] = LetterboxGeometry.cell(u, factor: factor, stride: stride, count: width)
        }
        return labels.withUnsafeBufferPointer { src in
            cols.withUnsafeBufferPointer { col in
                [Int32](unsafeUninitializedCapacity: h0 * w0) { out, initialized in
                    for v in 0..<h0 {
                        let i = LetterboxGeometry.cell(v, factor: factor, stride: stride, count: height)
                        let srcRow = i * width
                        let dstRow = v * w0
                        for u in 0..<w0 {
                            out[dstRow + u] = src[srcRow + col[u]]
                        }
                    }
                    initialized = h0 * w0
                }
            }
        }
    }

    @inline(__always)
    static func cell(_ k: Int, factor: Double, stride: Double, count: Int) -> Int {
        let c = ((Double(k) + 0.5) * factor / stride).rounded(.down)
        if c <= 0 { return 0 }
        if c >= Double(count - 1) { return count - 1 }
        return Int(c)
    }
}

extension GrouperResult {
    /// The instance masks at the original image size through `letterbox` (see
    /// ``LetterboxGeometry/labelsToImage(_:height:width:stride:)``): `h0 * w0` labels, row-major.
    public func labelsToImage(_ letterbox: LetterboxGeometry, stride: Double) throws -> [Int32] {
        try letterbox.labelsToImage(labels, height: height, width: width, stride: stride)
    }

    /// The instance boxes in original-image pixels, clipped to the image.
    public func boxesToImage(_ letterbox: LetterboxGeometry) -> [Box] {
        letterbox.boxesToImage(boxes)
    }
}
