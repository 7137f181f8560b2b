@testable import BBEGrouper
import Foundation
import XCTest

final class ErrorTests: XCTestCase {
    let h = 4, w = 5
    var prob: [Float] { [Float](repeating: 0.1, count: h * w) }
    var offsets: [Float] { [Float](repeating: 0, count: h * w * 4) }

    func assertThrows(_ expected: BBEGrouperError, mentioning words: [String], file: StaticString = #filePath,
                      line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error thrown, expected \(expected)", file: file, line: line)
        } catch let error as BBEGrouperError {
            XCTAssertEqual(error, expected, file: file, line: line)
            for word in words {
                XCTAssertTrue(error.description.contains(word), "\"\(error.description)\" lacks \"\(word)\"",
                              file: file, line: line)
                XCTAssertTrue(error.localizedDescription.contains(word), file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testNaNAndInfinityInProb() {
        for bad in [Float.nan, .infinity, -.infinity, .signalingNaN] {
            var p = prob
            p[7] = bad
            assertThrows(.nonFinite(array: "prob", index: 7), mentioning: ["prob", "NaN or inf"]) {
                _ = try Grouper.group(prob: p, offsets: offsets, height: h, width: w, stride: 4)
            }
        }
    }

    func testNaNAndInfinityInOffsets() {
        for bad in [Float.nan, .infinity, -.infinity] {
            var o = offsets
            o[h * w * 4 - 1] = bad
            assertThrows(.nonFinite(array: "offsets", index: h * w * 4 - 1), mentioning: ["offsets"]) {
                _ = try Grouper.group(prob: prob, offsets: o, height: h, width: w, stride: 4)
            }
        }
    }

    func testNonFiniteFoundInLongBuffers() {
        let n = 10_000
        var p = [Float](repeating: 0.2, count: n)
        p[n - 3] = .nan
        XCTAssertEqual(p.withUnsafeBufferPointer { Grouper.firstNonFinite($0) }, n - 3)
        p[n - 3] = .greatestFiniteMagnitude
        XCTAssertNil(p.withUnsafeBufferPointer { Grouper.firstNonFinite($0) })
    }

    func testMismatchedBufferSizes() {
        assertThrows(.shapeMismatch("prob has 19 values, expected height * width = 4 * 5 = 20"),
                     mentioning: ["prob", "19", "20"]) {
            _ = try Grouper.group(prob: Array(prob.dropLast()), offsets: offsets, height: h, width: w, stride: 4)
        }
        assertThrows(.shapeMismatch("offsets has 60 values, expected height * width * 4 = 4 * 5 * 4 = 80"),
                     mentioning: ["offsets", "60", "80"]) {
            _ = try Grouper.group(prob: prob, offsets: Array(offsets.prefix(60)), height: h, width: w, stride: 4)
        }
        XCTAssertThrowsError(try Grouper.group(prob: [], offsets: [], height: -1, width: 0, stride: 4))
    }

    func testInvalidStrideAndConfiguration() {
        for stride in [0.0, -4, .nan, .infinity] {
            XCTAssertThrowsError(try Grouper.group(prob: prob, offsets: offsets, height: h, width: w, stride: stride)) {
                XCTAssertTrue("\($0)".contains("stride"))
            }
        }
        let bad: [(GrouperConfiguration, String)] = [
            (GrouperConfiguration(tC: 1.5), "t_c"), (GrouperConfiguration(tNms: -0.1), "t_nms"),
            (GrouperConfiguration(tFg: .nan), "t_fg"), (GrouperConfiguration(tIou: 2), "t_iou"),
            (GrouperConfiguration(maxInstances: -1), "max_instances"), (GrouperConfiguration(anchorW: 0), "anchor_w"),
            (GrouperConfiguration(anchorH: .infinity), "anchor_h"), (GrouperConfiguration(maxLogScale: -1), "max_log_scale"),
        ]
        for (config, field) in bad {
            XCTAssertThrowsError(try Grouper.group(prob: prob, offsets: offsets, height: h, width: w, stride: 4,
                                                   configuration: config)) { error in
                guard case .invalidConfiguration = error as? BBEGrouperError else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains(field), "\(error) should name \(field)")
            }
        }
        // Thresholds exactly 0 and 1 are valid.
        XCTAssertNoThrow(try GrouperConfiguration(tC: 0, tNms: 1, tFg: 1, tIou: 0).validate())
    }

    func testValidationHappensBeforeAnyWork() {
        // NaN in an otherwise empty-of-people map is still an error.
        var p = [Float](repeating: 0, count: h * w)
        p[0] = .nan
        XCTAssertThrowsError(try Grouper.group(prob: p, offsets: offsets, height: h, width: w, stride: 4))
    }

    func testLabelsToImageSizeMismatch() throws {
        let letterbox = try LetterboxGeometry.fit(imageHeight: 10, imageWidth: 20, size: 64)
        XCTAssertThrowsError(try letterbox.labelsToImage([1, 2, 3], height: 2, width: 2, stride: 4)) {
            XCTAssertTrue("\($0)".contains("labels"))
        }
        XCTAssertThrowsError(try LetterboxGeometry.fit(imageHeight: 0, imageWidth: 20, size: 64))
        XCTAssertThrowsError(try LetterboxGeometry.fit(imageHeight: 10, imageWidth: 20, size: 0))
    }
}
