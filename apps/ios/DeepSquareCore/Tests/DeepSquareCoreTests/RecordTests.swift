import DeepSquareCore
import Foundation
import XCTest

final class RecordTests: XCTestCase {
    /// The keys of runtime/records.py BenchRecord (tests/test_ios_sources.py checks the same list
    /// against the Python dataclass).
    static let schemaKeys: Set<String> = [
        "model", "variant", "runtime", "threads", "warmup", "runs", "mean_ms", "std_ms", "p50_ms", "p90_ms",
        "min_ms", "init_ms", "machine", "max_ms", "extra", "api", "schema",
    ]

    /// apps/ios/DeepSquareCore/Fixtures/example-records.json: what the app writes for one setting;
    /// tests/test_ios_sources.py loads the same file with the Python reader.
    static var exampleRecords: URL {
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .appendingPathComponent("../../Fixtures/example-records.json")
            .standardizedFileURL
    }

    private func example() throws -> BenchRecord {
        let extra = RecordExtra(computeUnits: "cpuOnly", inputSize: 64)
        return try XCTUnwrap(BenchRecord.fromTimes([3, 1, 2, 4], model: "shufflenetv2_x0_5", variant: "sp+sex+ss",
                                                   warmup: 5, initMs: 41.25, machine: "iPhone16,1 (iOS 18.1)",
                                                   extra: extra))
    }

    func testRecordFromTimes() throws {
        let record = try example()
        XCTAssertEqual(record.runs, 4)
        XCTAssertEqual(record.meanMs, 2.5)
        XCTAssertEqual(record.stdMs, (5.0 / 3.0).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(record.p50Ms ?? 0, 2.5, accuracy: 1e-12)
        XCTAssertEqual(record.p90Ms ?? 0, 3.7, accuracy: 1e-12)
        XCTAssertEqual(record.minMs, 1)
        XCTAssertEqual(record.maxMs, 4)
        XCTAssertNil(record.threads)
        XCTAssertEqual(record.runtime, "coreml-ios")
        XCTAssertEqual(record.schema, "deepsquare-bench-record/1")
        XCTAssertNil(BenchRecord.fromTimes([], model: "m", variant: "v", warmup: 0, initMs: nil, machine: "x"))
    }

    func testJSONHasExactlyTheSchemaKeysAndRoundTrips() throws {
        let record = try example()
        let data = try BenchRecord.encodeList([record])
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertEqual(parsed.count, 1)
        XCTAssertEqual(Set(parsed[0].keys), RecordTests.schemaKeys)
        XCTAssertTrue(parsed[0]["threads"] is NSNull, "threads must be written as null")
        XCTAssertEqual(Set(BenchRecord.CodingKeys.allCases.map { $0.stringValue }), RecordTests.schemaKeys)
        XCTAssertEqual(try BenchRecord.decodeList(data), [record])
    }

    func testTheExampleFileIsWhatTheAppWrites() throws {
        let data = try Data(contentsOf: RecordTests.exampleRecords)
        let records = try BenchRecord.decodeList(data)
        XCTAssertEqual(records.count, 1)
        let mine = try example()
        XCTAssertEqual(records[0].model, mine.model)
        XCTAssertEqual(records[0].extra, mine.extra)
        XCTAssertEqual(records[0].stdMs, mine.stdMs, accuracy: 1e-12)
        XCTAssertEqual(records[0].p90Ms ?? 0, mine.p90Ms ?? 1, accuracy: 1e-12)
    }

    func testDecodingChecksSchemaAndKeys() throws {
        let good = try BenchRecord.encodeList([try example()])
        var rows = try XCTUnwrap(JSONSerialization.jsonObject(with: good) as? [[String: Any]])
        rows[0]["schema"] = "deepsquare-bench-record/0"
        XCTAssertThrowsError(try BenchRecord.decodeList(JSONSerialization.data(withJSONObject: rows)))
        rows[0]["schema"] = BenchRecord.schemaID
        rows[0].removeValue(forKey: "init_ms")
        XCTAssertThrowsError(try BenchRecord.decodeList(JSONSerialization.data(withJSONObject: rows)))
        rows[0]["init_ms"] = NSNull()
        rows[0].removeValue(forKey: "max_ms")
        rows[0].removeValue(forKey: "extra")
        let decoded = try BenchRecord.decodeList(JSONSerialization.data(withJSONObject: rows))
        XCTAssertNil(decoded[0].initMs)
        XCTAssertNil(decoded[0].maxMs)
        XCTAssertEqual(decoded[0].extra, RecordExtra())
    }

    func testRecordsFromATiming() throws {
        let meta = BundleMeta(arch: "resnet18", variant: "baseline", classes: ["a"], inputSize: 224,
                              mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let result = TimingResult(timesMs: [[2, 4], [1, 2], [3, 3]], initMs: [10, 20, 30], rounds: 2)
        let records = BenchRecord.fromTiming(result, units: ComputeUnitsName.allCases, meta: meta, warmup: 5,
                                             machine: "iPhone16,1 (iOS 18.1)")
        XCTAssertEqual(records.map { $0.extra.computeUnits }, ["cpuOnly", "cpuAndGPU", "all"])
        XCTAssertEqual(records.map { $0.model }, ["resnet18", "resnet18", "resnet18"])
        XCTAssertEqual(records.map { $0.initMs }, [10, 20, 30])
        XCTAssertEqual(records[0].extra.inputSize, 224)
    }
}
