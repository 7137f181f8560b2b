import Foundation

/// Pure-Swift helpers to turn a model output (an `MLMultiArray` on Apple platforms: Float16 or Float32,
/// any shape and strides) into the grouper's contiguous `Float` buffers. They take plain shape/stride
/// arrays and raw pointers, so they are tested on Linux; BBEKit only forwards `MLMultiArray`'s
/// `dataPointer`, `shape` and `strides` to them.
public enum TensorCopy {
    /// Element type of a source tensor.
    public enum ElementType: String, Sendable {
        case float16
        case float32
        case float64

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .float16: return 2
            case .float32: return 4
            case .float64: return 8
            }
        }
    }

    /// Number of elements of `shape` (1 for a scalar).
    ///
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` for a negative dimension or an overflowing product.
    public static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else { throw BBEGrouperError.shapeMismatch("negative dimension in shape \(shape)") }
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw BBEGrouperError.shapeMismatch("shape \(shape) is too large") }
            count = c
        }
        return count
    }

    /// Row-major (C-contiguous) strides of `shape`, in elements.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[k] = s
            s *= max(shape[k], 1)
        }
        return strides
    }

    /// Copies a strided tensor into a contiguous row-major `Float` buffer.
    ///
    /// - Parameters:
    ///   - source: the first element of the tensor (`MLMultiArray.dataPointer`).
    ///   - sourceCount: elements addressable from `source` (bounds check of the strides).
    ///   - type: element type of the source.
    ///   - shape: dimensions, outermost first.
    ///   - strides: distance in **elements** between neighbours along each dimension (`>= 0`).
    ///   - destination: exactly `product(shape)` floats, written in row-major order of `shape`.
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` when `shape`/`strides` disagree, a stride is negative,
    ///   an element lies beyond `sourceCount`, or the destination has the wrong size.
    public static func copyStrided(from source: UnsafeRawPointer, sourceCount: Int, type: ElementType,
                                   shape: [Int], strides: [Int],
                                   into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard shape.count == strides.count else {
            throw BBEGrouperError.shapeMismatch("shape \(shape) and strides \(strides) differ in rank")
        }
        let count = try elementCount(shape)
        guard destination.count == count else {
            throw BBEGrouperError.shapeMismatch(
                "destination has \(destination.count) floats, shape \(shape) has \(count) elements")
        }
        if count == 0 { return }
        var last = 0
        for (d, s) in zip(shape, strides) {
            guard s >= 0 else { throw BBEGrouperError.shapeMismatch("negative stride in \(strides)") }
            last += (d - 1) * s
        }
        guard last < sourceCount else {
            throw BBEGrouperError.shapeMismatch(
                "shape \(shape) with strides \(strides) reaches element \(last), source has \(sourceCount)")
        }
        guard let out = destination.baseAddress else { return }
        switch type {
        case .float32:
            walk(shape, strides, out) { source.load(fromByteOffset: $0 * 4, as: Float.self) }
        case .float64:
            walk(shape, strides, out) { Float(source.load(fromByteOffset: $0 * 8, as: Double.self)) }
        case .float16:
            walk(shape, strides, out) { halfToFloat(source.load(fromByteOffset: $0 * 2, as: UInt16.self)) }
        }
    }

    /// Array convenience of ``copyStrided(from:sourceCount:type:shape:strides:into:)``.
    public static func copyStrided(from source: UnsafeRawPointer, sourceCount: Int, type: ElementType,
                                   shape: [Int], strides: [Int]) throws -> [Float] {
        let count = try elementCount(shape)
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer {
            try copyStrided(from: source, sourceCount: sourceCount, type: type, shape: shape, strides: strides, into: $0)
        }
        return out
    }

    /// Visits every element in row-major order of `shape`; the innermost dimension is a tight loop.
    @inline(__always)
    private static func walk(_ shape: [Int], _ strides: [Int], _ out: UnsafeMutablePointer<Float>,
                             _ load: (Int) -> Float) {
        let rank = shape.count
        if rank == 0 {
            out[0] = load(0)
            return
        }
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var written = 0
        var base = 0
        let total = shape.reduce(1, *)
        while written < total {
            for k in 0..<inner {
                out[written + k] = load(base + k * innerStride)
            }
            written += inner
            // Advance the outer multi-index (odometer).
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                base += strides[d]
                if index[d] < shape[d] { break }
                base -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// IEEE 754 binary16 bits to `Float`, exact (normal, subnormal, inf, NaN). Written out by hand because
    /// `Float16` is unavailable on some platforms (macOS on Intel).
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int(h >> 10) & 0x1f
        let mantissa = UInt32(h & 0x03ff)
        if exponent == 0x1f {
            return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (mantissa << 13))
    }

    /// Applies the logistic sigmoid in place (`prob_activation == "sigmoid"`, docs/metadata.md), in Double.
    public static func applySigmoid(_ values: UnsafeMutableBufferPointer<Float>) {
        for k in values.indices {
            values[k] = Float(1.0 / (1.0 + exp(-Double(values[k]))))
        }
    }

    /// Height and width of an NHWC model output map with `channels` channels.
    ///
    /// Accepts `(1, H, W, C)`, `(H, W, C)` and, for `channels == 1`, `(1, H, W)` / `(H, W)`; leading
    /// dimensions of size 1 beyond the batch are also accepted (Core ML sometimes adds them).
    ///
    /// - Throws: ``BBEGrouperError/shapeMismatch(_:)`` naming `output` if the shape does not fit.
    public static func nhwcMapSize(shape: [Int], channels: Int, output: String) throws -> (height: Int, width: Int) {
        var dims = shape
        while dims.count > 3, dims[0] == 1 {
            dims.removeFirst()
        }
        if dims.count == 3, dims[2] == channels {
            return (dims[0], dims[1])
        }
        if channels == 1 {
            if dims.count == 3, dims[0] == 1 { return (dims[1], dims[2]) }
            if dims.count == 2 { return (dims[0], dims[1]) }
        }
        throw BBEGrouperError.shapeMismatch(
            "output \"\(output)\" has shape \(shape), expected NHWC (1, H, W, \(channels))")
    }
}
