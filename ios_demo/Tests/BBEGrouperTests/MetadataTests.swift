@testable import BBEGrouper
import Foundation
import XCTest

final class MetadataTests: XCTestCase {
    /// The sample of docs/metadata.md.
    static let sample = """
    {
      "format": "bbe-mobile/1",
      "input_size": 512,
      "input_name": "image",
      "input_layout": "NHWC",
      "input_range": [0.0, 255.0],
      "input_channels": "RGB",
      "input_dtype": "float32",
      "input_quantization": null,
      "stride": 4,
      "anchor_w": 78.38367176906169,
      "anchor_h": 117.57550765359254,
      "max_log_scale": 4.0,
      "t_c": 0.6, "t_nms": 0.4, "t_fg": 0.5, "t_iou": 0.3, "max_instances": 20,
      "prob_output": "person_prob",
      "offsets_output": "box_offsets",
      "prob_activation": "none",
      "output_layout": "NHWC",
      "model_name": "bbe_mnv2_035",
      "model_version": "1",
      "toolkit_version": "0.1.0",
      "precision": "fp32"
    }
    """

    /// The defaults of docs/grouper.md. The anchor is compared to 1e-12: docs/metadata.md prints
    /// anchor_h = 117.57550765359254 while 96 * sqrt(1.5) (Python, golden files) is 117.57550765359255.
    func assertDefault(_ c: GrouperConfiguration, file: StaticString = #filePath, line: UInt = #line) {
        let d = GrouperConfiguration()
        XCTAssertEqual(c.tC, d.tC, file: file, line: line)
        XCTAssertEqual(c.tNms, d.tNms, file: file, line: line)
        XCTAssertEqual(c.tFg, d.tFg, file: file, line: line)
        XCTAssertEqual(c.tIou, d.tIou, file: file, line: line)
        XCTAssertEqual(c.maxInstances, d.maxInstances, file: file, line: line)
        XCTAssertEqual(c.anchorW, d.anchorW, accuracy: 1e-12, file: file, line: line)
        XCTAssertEqual(c.anchorH, d.anchorH, accuracy: 1e-12, file: file, line: line)
        XCTAssertEqual(c.maxLogScale, d.maxLogScale, file: file, line: line)
    }

    func object(_ json: String = sample) throws -> [String: Any] {
        try MetadataReader.object(fromJSON: json)
    }

    func testParsesTheSample() throws {
        let m = try BBEModelMetadata(jsonString: Self.sample)
        XCTAssertEqual(m.format, "bbe-mobile/1")
        XCTAssertEqual(m.inputSize, 512)
        XCTAssertEqual(m.inputName, "image")
        XCTAssertEqual(m.inputLayout, "NHWC")
        XCTAssertEqual(m.inputRange, [0, 255])
        XCTAssertEqual(m.inputChannels, "RGB")
        XCTAssertEqual(m.inputDtype, "float32")
        XCTAssertNil(m.inputQuantization)
        XCTAssertEqual(m.stride, 4)
        XCTAssertEqual(m.probOutput, "person_prob")
        XCTAssertEqual(m.offsetsOutput, "box_offsets")
        XCTAssertEqual(m.probActivation, .none)
        XCTAssertEqual(m.outputLayout, "NHWC")
        XCTAssertEqual(m.modelName, "bbe_mnv2_035")
        XCTAssertEqual(m.modelVersion, "1")
        XCTAssertEqual(m.toolkitVersion, "0.1.0")
        XCTAssertEqual(m.precision, "fp32")
        XCTAssertEqual(m.outputSide, 128)
        assertDefault(m.grouper)
        XCTAssertEqual(m.grouper.anchorW, 78.38367176906169, accuracy: 1e-12)
        XCTAssertEqual(m.grouper.anchorH, 117.57550765359254, accuracy: 1e-12)
        assertDefault(try GrouperConfiguration(metadataJSON: Self.sample))
        XCTAssertEqual(try BBEModelMetadata(creatorDefined: ["bbe": Self.sample, "other": "x"]), m)
    }

    /// `mode`, `refine_rounds` and `refine_statistic` are optional (the sample, written before Grouper v2, means
    /// the paper's mode), read when present, and checked.
    func testGrouperModeKeys() throws {
        XCTAssertEqual(try GrouperConfiguration(metadataJSON: Self.sample).mode, .paper)
        var o = try object()
        o["mode"] = "refine"
        o["refine_rounds"] = 2
        let refine = try GrouperConfiguration(metadata: o)
        XCTAssertEqual(refine.mode, .refine)
        XCTAssertEqual(refine.refineRounds, 2)
        o["mode"] = "median"
        XCTAssertThrowsError(try GrouperConfiguration(metadata: o)) { error in
            XCTAssertTrue("\(error)".contains("mode"), "\(error)")
        }
        o["mode"] = "refine"
        o["refine_rounds"] = 0
        XCTAssertThrowsError(try GrouperConfiguration(metadata: o)) { error in
            XCTAssertTrue("\(error)".contains("refine_rounds"), "\(error)")
        }
        XCTAssertEqual(refine.refineStatistic, .median)
        o["refine_rounds"] = 2
        o["refine_statistic"] = "mean"
        XCTAssertEqual(try GrouperConfiguration(metadata: o).refineStatistic, .mean)
        o["refine_statistic"] = "mode"
        XCTAssertThrowsError(try GrouperConfiguration(metadata: o)) { error in
            XCTAssertTrue("\(error)".contains("refine_statistic"), "\(error)")
        }
        let decoded = try JSONDecoder().decode(GrouperConfiguration.self, from: Data(Self.sample.utf8))
        XCTAssertEqual(decoded.mode, .paper)
        XCTAssertEqual(decoded.refineRounds, 1)
        XCTAssertEqual(decoded.refineStatistic, .median)
    }

    /// The JSON block of docs/metadata.md itself parses (guards against the doc and the parser drifting).
    func testParsesTheDocumentationBlock() throws {
        let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/metadata.md")
        guard let text = try? String(contentsOf: doc, encoding: .utf8) else {
            throw XCTSkip("docs/metadata.md not found at \(doc.path)")
        }
        guard let start = text.range(of: "```json\n"),
              let end = text.range(of: "\n```", range: start.upperBound..<text.endIndex) else {
            return XCTFail("no ```json block in docs/metadata.md")
        }
        let m = try BBEModelMetadata(jsonString: String(text[start.upperBound..<end.lowerBound]))
        assertDefault(m.grouper)
        XCTAssertEqual(m.inputSize, 512)
    }

    func testNonDefaultValuesAndQuantisation() throws {
        var o = try object()
        o["t_c"] = 0.7
        o["max_instances"] = 5
        o["stride"] = 8
        o["prob_activation"] = "sigmoid"
        o["input_dtype"] = "uint8"
        o["input_quantization"] = [0.5, 3]
        let m = try BBEModelMetadata(object: o)
        XCTAssertEqual(m.grouper.tC, 0.7)
        XCTAssertEqual(m.grouper.maxInstances, 5)
        XCTAssertEqual(m.stride, 8)
        XCTAssertEqual(m.probActivation, .sigmoid)
        XCTAssertEqual(m.inputQuantization, [0.5, 3])
    }

    func testEveryMissingKeyIsNamed() throws {
        for key in BBEModelMetadata.requiredKeys {
            var o = try object()
            o.removeValue(forKey: key)
            XCTAssertThrowsError(try BBEModelMetadata(object: o)) { error in
                XCTAssertEqual(error as? BBEGrouperError, .badMetadata("missing key \"\(key)\""))
                XCTAssertTrue("\(error)".contains("\"\(key)\""), "\(error)")
            }
        }
        for key in GrouperConfiguration.metadataKeys {
            var o = try object()
            o.removeValue(forKey: key)
            XCTAssertThrowsError(try GrouperConfiguration(metadata: o)) { error in
                XCTAssertEqual(error as? BBEGrouperError, .badMetadata("missing key \"\(key)\""))
            }
        }
    }

    func testMissingBBEEntry() {
        XCTAssertThrowsError(try BBEModelMetadata(creatorDefined: ["author": "x"])) { error in
            guard case let .badMetadata(message)? = error as? BBEGrouperError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("\"bbe\""), message)
        }
    }

    func testBadValues() throws {
        let cases: [(String, Any, String)] = [
            ("t_c", "0.6", "t_c"), ("max_instances", 2.5, "max_instances"), ("input_size", "512", "input_size"),
            ("prob_activation", "softmax", "prob_activation"), ("format", "bbe-mobile/2", "format"),
            ("output_layout", "NCHW", "output_layout"), ("input_range", [0], "input_range"),
            ("stride", 0, "stride"), ("t_iou", 1.5, "t_iou"), ("model_name", 3, "model_name"),
        ]
        for (key, value, word) in cases {
            var o = try object()
            o[key] = value
            XCTAssertThrowsError(try BBEModelMetadata(object: o), key) { error in
                XCTAssertTrue("\(error)".contains(word), "\(error) should name \(word)")
            }
        }
    }

    func testNotJSON() {
        for text in ["", "not json", "[1, 2]", "{\"t_c\": }"] {
            XCTAssertThrowsError(try GrouperConfiguration(metadataJSON: text)) { error in
                guard case .badMetadata = error as? BBEGrouperError else { return XCTFail("\(error)") }
            }
        }
    }

    func testIntegralNumbersAccepted() throws {
        var o = try object()
        o["max_instances"] = 20.0
        o["input_size"] = 512
        XCTAssertEqual(try BBEModelMetadata(object: o).grouper.maxInstances, 20)
    }
}
