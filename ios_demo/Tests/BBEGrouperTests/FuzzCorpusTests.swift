import BBEGolden
import BBEGrouper
import Foundation
import XCTest

/// The Swift readers of untrusted files on a corpus of mutated files written by `tests/fuzz_corpus.py`
/// (directory `$BBE_FUZZ_CORPUS`; `test.sh` writes one): golden cases (`GoldenCase`) and `bbe` model metadata
/// (`BBEModelMetadata`). Each input must be read or refused with the reader's own error in one line; a trap
/// (overflow, bad range) stops the test process and fails the run.
final class FuzzCorpusTests: XCTestCase {
    func corpus() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["BBE_FUZZ_CORPUS"], !path.isEmpty else {
            throw XCTSkip("BBE_FUZZ_CORPUS is not set (test.sh writes the corpus with tests/fuzz_corpus.py)")
        }
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    func entries(_ directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// Runs `read`; a `GoldenError` or `BBEGrouperError` with a one-line message passes, any other error fails.
    /// Returns whether the input was refused.
    func readOrRefuse(_ input: URL, _ read: () throws -> Void) -> Bool {
        do {
            try read()
            return false
        } catch let error as GoldenError {
            assertOneLine(error.description, input)
        } catch let error as BBEGrouperError {
            assertOneLine(error.description, input)
        } catch {
            XCTFail("\(input.path): unexpected \(type(of: error)): \(error)")
        }
        return true
    }

    func assertOneLine(_ message: String, _ input: URL) {
        XCTAssertFalse(message.isEmpty, "\(input.path): empty error message")
        XCTAssertFalse(message.contains("\n"), "\(input.path): error message over several lines: \(message)")
    }

    /// A case that was read is consistent: sizes of at least 0, arrays of `height * width` cells, boxes of 4 values.
    func checkRead(_ golden: GoldenCase, _ input: URL) {
        XCTAssertTrue(golden.height >= 0 && golden.width >= 0, "\(input.path): read a \(golden.height) x \(golden.width) case")
        let cells = golden.height * golden.width
        XCTAssertEqual(golden.prob.count, cells, "\(input.path): prob")
        XCTAssertEqual(golden.offsets.count, 4 * cells, "\(input.path): offsets")
        XCTAssertEqual(golden.labels.count, cells, "\(input.path): labels")
        XCTAssertTrue((golden.boxes + (golden.image?.boxes ?? [])).allSatisfy { $0.count == 4 }, "\(input.path): boxes")
        if let image = golden.image {
            XCTAssertTrue(image.height >= 0 && image.width >= 0, "\(input.path): image \(image.height) x \(image.width)")
            XCTAssertEqual(image.labels.count, image.height * image.width, "\(input.path): image labels")
        }
    }

    func testMutatedGoldenCases() throws {
        let cases = try entries(try corpus().appendingPathComponent("golden"))
        XCTAssertFalse(cases.isEmpty, "no golden cases in the corpus")
        var refused = 0
        for directory in cases {
            refused += readOrRefuse(directory) {
                for name in try GoldenCase.caseNames(in: directory) {
                    checkRead(try GoldenCase(name: name, directory: directory), directory)
                }
            } ? 1 : 0
            refused += readOrRefuse(directory) {
                checkRead(try GoldenCase(name: "touching", directory: directory), directory)
            } ? 1 : 0
        }
        print("FuzzCorpusTests: \(cases.count) mutated golden directories, \(2 * cases.count) reads, \(refused) refused")
    }

    func testMutatedMetadata() throws {
        let files = try entries(try corpus().appendingPathComponent("metadata"))
        XCTAssertFalse(files.isEmpty, "no metadata texts in the corpus")
        var refused = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            refused += readOrRefuse(file) { _ = try BBEModelMetadata(jsonString: text) } ? 1 : 0
        }
        print("FuzzCorpusTests: \(files.count) mutated metadata texts, \(refused) refused")
    }
}
