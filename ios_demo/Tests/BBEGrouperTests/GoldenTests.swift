import BBEGolden
@testable import BBEGrouper
import Foundation
import XCTest

/// Every case of ../tests/golden (read in place) through the Swift grouper.
final class GoldenTests: XCTestCase {
    static let directory = GoldenCase.defaultDirectory()

    func loadCases() throws -> [GoldenCase] {
        let index = Self.directory.appendingPathComponent("index.json")
        guard FileManager.default.fileExists(atPath: index.path) else {
            XCTFail("golden vectors not found at \(Self.directory.path) (set BBE_GOLDEN_DIR)")
            return []
        }
        return try GoldenCase.loadAll(from: Self.directory)
    }

    func testIndexListsAllCases() throws {
        let cases = try loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, 16)
        XCTAssertTrue(cases.contains { $0.name == "bench_129_10" })
        XCTAssertTrue(cases.contains { $0.image != nil }, "expected at least one case with an image block")
    }

    func testEveryGoldenCase() throws {
        let cases = try loadCases()
        let shared = Grouper()  // reused across sizes: exercises the work-buffer reuse
        for golden in cases {
            let fresh = try Grouper.group(prob: golden.prob, offsets: golden.offsets, height: golden.height,
                                          width: golden.width, stride: golden.stride,
                                          configuration: golden.configuration)
            shared.configuration = golden.configuration
            let reused = try shared.group(prob: golden.prob, offsets: golden.offsets, height: golden.height,
                                          width: golden.width, stride: golden.stride)
            XCTAssertEqual(fresh, reused, "\(golden.name): reused grouper differs")
            check(fresh, golden)
        }
    }

    func check(_ result: GrouperResult, _ golden: GoldenCase) {
        let name = golden.name
        XCTAssertEqual(result.height, golden.height, name)
        XCTAssertEqual(result.width, golden.width, name)
        XCTAssertEqual(result.labels.count, golden.labels.count, name)
        if result.labels != golden.labels {
            let diff = zip(result.labels, golden.labels).enumerated().filter { $0.element.0 != $0.element.1 }
            XCTFail("\(name): \(diff.count) labels differ, first at flat index \(diff.first.map { $0.offset } ?? -1)")
        }
        XCTAssertEqual(result.boxes.count, golden.boxes.count, "\(name): instance count")
        XCTAssertEqual(result.scores.count, golden.scores.count, "\(name): score count")
        for (k, (box, expected)) in zip(result.boxes, golden.boxes).enumerated() {
            for (got, want) in zip(box.array, expected) {
                XCTAssertEqual(Double(got), want, accuracy: golden.tolerance, "\(name): box \(k + 1)")
            }
        }
        for (k, (score, expected)) in zip(result.scores, golden.scores).enumerated() {
            XCTAssertEqual(Double(score), expected, accuracy: golden.tolerance, "\(name): score \(k + 1)")
            XCTAssertTrue((0...1).contains(score), "\(name): score \(k + 1) out of [0, 1]")
        }
        guard let image = golden.image else { return }
        let letterbox = LetterboxGeometry(imageHeight: image.height, imageWidth: image.width, scale: image.scale,
                                          contentHeight: 0, contentWidth: 0, side: 0)
        do {
            let labels = try result.labelsToImage(letterbox, stride: golden.stride)
            XCTAssertEqual(labels.count, image.height * image.width, name)
            XCTAssertTrue(labels == image.labels, "\(name): image labels differ")
        } catch {
            XCTFail("\(name): labelsToImage threw \(error)")
        }
        let boxes = result.boxesToImage(letterbox)
        XCTAssertEqual(boxes.count, image.boxes.count, "\(name): image box count")
        for (k, (box, expected)) in zip(boxes, image.boxes).enumerated() {
            for (got, want) in zip(box.array, expected) {
                XCTAssertEqual(Double(got), want, accuracy: golden.tolerance, "\(name): image box \(k + 1)")
            }
        }
    }

    /// The golden image block's scale is the one `LetterboxGeometry.fit` computes for a 256 canvas.
    func testLetterboxFitMatchesGoldenScale() throws {
        for golden in try loadCases() {
            guard let image = golden.image else { continue }
            let side = Int((Double(golden.height) * golden.stride).rounded())
            let fit = try LetterboxGeometry.fit(imageHeight: image.height, imageWidth: image.width, size: side)
            XCTAssertEqual(fit.scale, image.scale, accuracy: 1e-12, golden.name)
        }
    }
}
