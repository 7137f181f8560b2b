#if canImport(CoreML)
import BBEGrouper
import CoreML
import Foundation

extension MLMultiArray {
    /// The elements as contiguous row-major `Float`s, whatever the data type (Float16, Float32, Double) and
    /// strides (Core ML pads rows on the Neural Engine). The stride logic lives in
    /// ``TensorCopy/copyStrided(from:sourceCount:type:shape:strides:into:)`` (tested on Linux).
    public func contiguousFloats() throws -> [Float] {
        let shape = self.shape.map(\.intValue)
        let strides = self.strides.map(\.intValue)
        let type: TensorCopy.ElementType
        switch dataType {
        case .float32: type = .float32
        case .double: type = .float64
        case .float16: type = .float16
        default:
            throw BBEKitError.modelMismatch("unsupported MLMultiArray data type \(dataType.rawValue) (expected float16/32/64)")
        }
        var out = [Float](repeating: 0, count: try TensorCopy.elementCount(shape))
        try withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            try out.withUnsafeMutableBufferPointer { destination in
                try TensorCopy.copyStrided(from: base, sourceCount: raw.count / type.size, type: type,
                                           shape: shape, strides: strides, into: destination)
            }
        }
        return out
    }
}

/// One NHWC output map (`(1, H, W, C)`) as contiguous floats.
struct OutputMap {
    var values: [Float]
    var height: Int
    var width: Int

    init(_ array: MLMultiArray, channels: Int, name: String) throws {
        let size = try TensorCopy.nhwcMapSize(shape: array.shape.map(\.intValue), channels: channels, output: name)
        height = size.height
        width = size.width
        values = try array.contiguousFloats()
    }
}
#endif
