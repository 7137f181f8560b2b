@testable import BBEGrouper
import Foundation
import XCTest

/// The strided copy used for `MLMultiArray` outputs (shape/strides as Core ML reports them).
final class TensorCopyTests: XCTestCase {
    func copy<T>(_ storage: [T], _ type: TensorCopy.ElementType, shape: [Int], strides: [Int]) throws -> [Float] {
        try storage.withUnsafeBytes { raw in
            try TensorCopy.copyStrided(from: raw.baseAddress!, sourceCount: storage.count, type: type,
                                       shape: shape, strides: strides)
        }
    }

    func testContiguousFloat32() throws {
        let data: [Float] = (0..<24).map(Float.init)
        let shape = [1, 2, 3, 4]
        XCTAssertEqual(TensorCopy.contiguousStrides(shape), [24, 12, 4, 1])
        XCTAssertEqual(try copy(data, .float32, shape: shape, strides: [24, 12, 4, 1]), data)
    }

    /// Rows padded to a multiple of 8 elements, as Core ML does on the Neural Engine.
    func testPaddedRows() throws {
        let (h, w, c) = (3, 5, 4)
        let rowStride = 32  // w * c = 20, padded to 32
        var storage = [Float](repeating: -99, count: h * rowStride)
        var expected: [Float] = []
        for i in 0..<h {
            for j in 0..<w {
                for k in 0..<c {
                    let v = Float(i * 100 + j * 10 + k)
                    storage[i * rowStride + j * c + k] = v
                    expected.append(v)
                }
            }
        }
        XCTAssertEqual(try copy(storage, .float32, shape: [1, h, w, c], strides: [h * rowStride, rowStride, c, 1]), expected)
    }

    /// A channel-first (NCHW) buffer read as NHWC through permuted strides.
    func testPermutedStrides() throws {
        let (h, w, c) = (2, 3, 4)
        var nchw = [Float](repeating: 0, count: h * w * c)
        for k in 0..<c { for i in 0..<h { for j in 0..<w { nchw[(k * h + i) * w + j] = Float(i * 100 + j * 10 + k) } } }
        let out = try copy(nchw, .float32, shape: [1, h, w, c], strides: [h * w * c, w, 1, h * w])
        var expected: [Float] = []
        for i in 0..<h { for j in 0..<w { for k in 0..<c { expected.append(Float(i * 100 + j * 10 + k)) } } }
        XCTAssertEqual(out, expected)
    }

    func testFloat16AndFloat64() throws {
        // 1.0, -2.0, 0.5, 65504 (max half), smallest subnormal 2^-24, -0
        let bits: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000]
        let out = try copy(bits, .float16, shape: [2, 3], strides: [3, 1])
        XCTAssertEqual(out, [1, -2, 0.5, 65504, 0x1p-24, 0])
        XCTAssertEqual(out[5].sign, .minus)
        let doubles: [Double] = [0.25, 1e-3, -7]
        XCTAssertEqual(try copy(doubles, .float64, shape: [3], strides: [1]), [0.25, Float(1e-3), -7])
    }

    func testHalfToFloatSpecialValues() {
        XCTAssertEqual(TensorCopy.halfToFloat(0x7C00), .infinity)
        XCTAssertEqual(TensorCopy.halfToFloat(0xFC00), -.infinity)
        XCTAssertTrue(TensorCopy.halfToFloat(0x7E00).isNaN)
        XCTAssertEqual(TensorCopy.halfToFloat(0x3555), 0.333251953125)
        XCTAssertEqual(TensorCopy.halfToFloat(0x03FF), 0x1.ff8p-15)  // largest subnormal
        XCTAssertEqual(TensorCopy.halfToFloat(0x0400), 0x1p-14)  // smallest normal
        // Every finite half round-trips through Double exactly (Float16 where the platform has it).
        #if !(os(macOS) && arch(x86_64))
        for b in UInt16(0)...UInt16.max {
            let f16 = Float16(bitPattern: b)
            let f = TensorCopy.halfToFloat(b)
            if f16.isNaN { XCTAssertTrue(f.isNaN); continue }
            XCTAssertEqual(f, Float(f16), "bits \(String(b, radix: 16))")
        }
        #endif
    }

    func testErrors() throws {
        let data = [Float](repeating: 0, count: 10)
        XCTAssertThrowsError(try copy(data, .float32, shape: [2, 5], strides: [5])) {
            XCTAssertTrue("\($0)".contains("rank"))
        }
        XCTAssertThrowsError(try copy(data, .float32, shape: [2, 6], strides: [6, 1])) {
            XCTAssertTrue("\($0)".contains("reaches element"))
        }
        XCTAssertThrowsError(try copy(data, .float32, shape: [2, 5], strides: [-5, 1]))
        XCTAssertThrowsError(try copy(data, .float32, shape: [-1, 5], strides: [5, 1]))
        var small = [Float](repeating: 0, count: 3)
        try data.withUnsafeBytes { raw in
            try small.withUnsafeMutableBufferPointer { out in
                XCTAssertThrowsError(try TensorCopy.copyStrided(from: raw.baseAddress!, sourceCount: 10, type: .float32,
                                                                shape: [2, 5], strides: [5, 1], into: out))
            }
        }
        XCTAssertEqual(try copy(data, .float32, shape: [0, 5], strides: [5, 1]), [])
    }

    func testSigmoid() {
        var v: [Float] = [0, 2, -2, 40, -40]
        v.withUnsafeMutableBufferPointer { TensorCopy.applySigmoid($0) }
        XCTAssertEqual(v[0], 0.5)
        XCTAssertEqual(Double(v[1]), 1 / (1 + exp(-2.0)), accuracy: 1e-7)
        XCTAssertEqual(v[1] + v[2], 1, accuracy: 1e-6)
        XCTAssertEqual(v[3], 1)
        XCTAssertEqual(v[4], 0, accuracy: 1e-12)
    }

    func testNHWCMapSize() throws {
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [1, 128, 96, 1], channels: 1, output: "p") == (128, 96))
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [1, 128, 96, 4], channels: 4, output: "o") == (128, 96))
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [1, 1, 128, 96, 4], channels: 4, output: "o") == (128, 96))
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [128, 96, 4], channels: 4, output: "o") == (128, 96))
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [1, 128, 96], channels: 1, output: "p") == (128, 96))
        XCTAssertTrue(try TensorCopy.nhwcMapSize(shape: [128, 96], channels: 1, output: "p") == (128, 96))
        XCTAssertThrowsError(try TensorCopy.nhwcMapSize(shape: [1, 4, 128, 96], channels: 4, output: "box_offsets")) {
            XCTAssertTrue("\($0)".contains("box_offsets"))
        }
    }

    func testLetterboxFit() throws {
        let a = try LetterboxGeometry.fit(imageHeight: 428, imageWidth: 640, size: 512)
        XCTAssertEqual(a.scale, 0.8)
        XCTAssertEqual(a.contentHeight, 342)  // 342.4
        XCTAssertEqual(a.contentWidth, 512)
        XCTAssertEqual(a.side, 512)
        // round half to even like Python's round: 5 * 0.5 = 2.5 -> 2
        let b = try LetterboxGeometry.fit(imageHeight: 5, imageWidth: 1024, size: 512)
        XCTAssertEqual(b.contentHeight, 2)
        let c = try LetterboxGeometry.fit(imageHeight: 1, imageWidth: 4096, size: 512)
        XCTAssertEqual(c.contentHeight, 1)  // at least 1
        XCTAssertEqual(try LetterboxGeometry.fit(imageHeight: 10, imageWidth: 10, size: 250).side, 256)
        // boxes to the image: divide by scale and clip
        let box = a.boxToImage(Box(x1: -8, y1: 40, x2: 600, y2: 400))
        XCTAssertEqual(box, Box(x1: 0, y1: 50, x2: 640, y2: 428))
    }

    /// Mirror of Python's test_labels_and_boxes_to_image.
    func testLabelsAndBoxesToImageLikePython() throws {
        let letterbox = LetterboxGeometry(imageHeight: 16, imageWidth: 16, scale: 0.5, contentHeight: 8, contentWidth: 8, side: 8)
        let up = try letterbox.labelsToImage([0, 1, 2, 0], height: 2, width: 2, stride: 4)
        XCTAssertEqual(up.count, 256)
        XCTAssertEqual(up[15], 1)
        XCTAssertEqual(up[15 * 16], 2)
        XCTAssertEqual(up[0], 0)
        XCTAssertEqual(letterbox.boxToImage(Box(x1: -4, y1: 2, x2: 10, y2: 40)), Box(x1: 0, y1: 4, x2: 16, y2: 16))
    }

    func testLabelsToImageNearestCell() throws {
        // 2 x 3 map at stride 4, image 8 x 12 at scale 1: every 4 x 4 block takes one cell.
        let letterbox = LetterboxGeometry(imageHeight: 8, imageWidth: 12, scale: 1, contentHeight: 8, contentWidth: 12, side: 12)
        let labels: [Int32] = [1, 2, 3, 4, 5, 6]
        let out = try letterbox.labelsToImage(labels, height: 2, width: 3, stride: 4)
        XCTAssertEqual(out.count, 96)
        XCTAssertEqual(out[0], 1)
        XCTAssertEqual(out[3], 1)
        XCTAssertEqual(out[4], 2)
        XCTAssertEqual(out[11], 3)
        XCTAssertEqual(out[4 * 12], 4)
        XCTAssertEqual(out[95], 6)
        // Pixels beyond the map clamp to the last cell.
        let wide = LetterboxGeometry(imageHeight: 2, imageWidth: 40, scale: 1, contentHeight: 2, contentWidth: 40, side: 40)
        XCTAssertEqual(try wide.labelsToImage(labels, height: 2, width: 3, stride: 4)[39], 3)
    }
}
