import Foundation

/// `extra` of a record the app writes: the Core ML compute units and the input size. Other keys in records
/// written elsewhere are ignored on reading.
public struct RecordExtra: Codable, Equatable, Sendable {
    public var computeUnits: String?
    public var inputSize: Int?

    enum CodingKeys: String, CodingKey {
        case computeUnits = "compute_units"
        case inputSize = "input_size"
    }

    public init(computeUnits: String? = nil, inputSize: Int? = nil) {
        self.computeUnits = computeUnits
        self.inputSize = inputSize
    }
}

/// The project's one benchmark record ("deepsquare-bench-record/1", runtime/records.py
/// `BenchRecord`): the app writes a JSON list of these, `deepsquare bench --add-records FILE` reads it.
/// Every key is written, null included (Python's `asdict`), in snake_case.
public struct BenchRecord: Codable, Equatable, Sendable {
    public static let schemaID = "deepsquare-bench-record/1"
    public static let runtimeName = "coreml-ios"

    public var model: String
    public var variant: String
    public var runtime: String
    public var threads: Int?
    public var warmup: Int
    public var runs: Int
    public var meanMs: Double
    public var stdMs: Double
    public var p50Ms: Double?
    public var p90Ms: Double?
    public var minMs: Double
    public var initMs: Double?
    public var machine: String
    public var maxMs: Double?
    public var extra: RecordExtra
    /// The runtime's API that ran it; null for Core ML (one API).
    public var schema: String
    public var api: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case model
        case variant
        case runtime
        case threads
        case warmup
        case runs
        case meanMs = "mean_ms"
        case stdMs = "std_ms"
        case p50Ms = "p50_ms"
        case p90Ms = "p90_ms"
        case minMs = "min_ms"
        case initMs = "init_ms"
        case machine
        case maxMs = "max_ms"
        case extra
        case schema
        case api
    }

    public init(model: String, variant: String, runtime: String = BenchRecord.runtimeName, threads: Int? = nil,
                warmup: Int, runs: Int, meanMs: Double, stdMs: Double, p50Ms: Double?, p90Ms: Double?,
                minMs: Double, initMs: Double?, machine: String, maxMs: Double? = nil,
                extra: RecordExtra = RecordExtra(), api: String? = nil, schema: String = BenchRecord.schemaID) {
        self.model = model
        self.variant = variant
        self.runtime = runtime
        self.threads = threads
        self.warmup = warmup
        self.runs = runs
        self.meanMs = meanMs
        self.stdMs = stdMs
        self.p50Ms = p50Ms
        self.p90Ms = p90Ms
        self.minMs = minMs
        self.initMs = initMs
        self.machine = machine
        self.maxMs = maxMs
        self.extra = extra
        self.api = api
        self.schema = schema
    }

    /// `record_from_times` of runtime/records.py; nil for no times.
    public static func fromTimes(_ timesMs: [Double], model: String, variant: String, warmup: Int, initMs: Double?,
                                 machine: String, extra: RecordExtra = RecordExtra(),
                                 runtime: String = BenchRecord.runtimeName) -> BenchRecord? {
        let ordered = timesMs.sorted()
        guard let first = ordered.first, let last = ordered.last else {
            return nil
        }
        return BenchRecord(
            model: model, variant: variant, runtime: runtime, threads: nil, warmup: warmup, runs: ordered.count,
            meanMs: LatencyStats.mean(ordered), stdMs: LatencyStats.sampleStd(ordered),
            p50Ms: LatencyStats.percentile(ordered, 50), p90Ms: LatencyStats.percentile(ordered, 90),
            minMs: first, initMs: initMs, machine: machine, maxMs: last, extra: extra
        )
    }

    /// As `BenchRecord.from_dict`: the schema must match and every key but max_ms and extra must be
    /// present (threads, p50_ms, p90_ms and init_ms may be null).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try c.decodeIfPresent(String.self, forKey: .schema)
        if schema != BenchRecord.schemaID {
            throw DecodingError.dataCorruptedError(
                forKey: .schema, in: c,
                debugDescription: "not a \(BenchRecord.schemaID) record: schema=\(schema ?? "None")")
        }
        let missing = CodingKeys.allCases.filter { $0 != .maxMs && $0 != .extra && $0 != .api && !c.contains($0) }
        if let key = missing.first {
            let names = missing.map { $0.stringValue }.joined(separator: ", ")
            throw DecodingError.keyNotFound(
                key, DecodingError.Context(codingPath: c.codingPath, debugDescription: "benchmark record lacks \(names)"))
        }
        model = try c.decode(String.self, forKey: .model)
        variant = try c.decode(String.self, forKey: .variant)
        runtime = try c.decode(String.self, forKey: .runtime)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        warmup = try c.decode(Int.self, forKey: .warmup)
        runs = try c.decode(Int.self, forKey: .runs)
        meanMs = try c.decode(Double.self, forKey: .meanMs)
        stdMs = try c.decode(Double.self, forKey: .stdMs)
        p50Ms = try c.decodeIfPresent(Double.self, forKey: .p50Ms)
        p90Ms = try c.decodeIfPresent(Double.self, forKey: .p90Ms)
        minMs = try c.decode(Double.self, forKey: .minMs)
        initMs = try c.decodeIfPresent(Double.self, forKey: .initMs)
        machine = try c.decode(String.self, forKey: .machine)
        maxMs = try c.decodeIfPresent(Double.self, forKey: .maxMs)
        extra = try c.decodeIfPresent(RecordExtra.self, forKey: .extra) ?? RecordExtra()
        api = try c.decodeIfPresent(String.self, forKey: .api)
        self.schema = BenchRecord.schemaID
    }

    /// Every key, nulls written out (a synthesized encoder would drop nil optionals).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(variant, forKey: .variant)
        try c.encode(runtime, forKey: .runtime)
        try BenchRecord.encodeOrNull(threads, .threads, &c)
        try c.encode(warmup, forKey: .warmup)
        try c.encode(runs, forKey: .runs)
        try c.encode(meanMs, forKey: .meanMs)
        try c.encode(stdMs, forKey: .stdMs)
        try BenchRecord.encodeOrNull(p50Ms, .p50Ms, &c)
        try BenchRecord.encodeOrNull(p90Ms, .p90Ms, &c)
        try c.encode(minMs, forKey: .minMs)
        try BenchRecord.encodeOrNull(initMs, .initMs, &c)
        try c.encode(machine, forKey: .machine)
        try BenchRecord.encodeOrNull(maxMs, .maxMs, &c)
        try c.encode(extra, forKey: .extra)
        try c.encode(schema, forKey: .schema)
        try BenchRecord.encodeOrNull(api, .api, &c)
    }

    static func encodeOrNull<T: Encodable>(_ value: T?, _ key: CodingKeys,
                                           _ container: inout KeyedEncodingContainer<CodingKeys>) throws {
        if let present = value {
            try container.encode(present, forKey: key)
        } else {
            try container.encodeNil(forKey: key)
        }
    }

    /// The file the app shares: a JSON list of records, keys sorted, indented.
    public static func encodeList(_ records: [BenchRecord]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(records)
    }

    public static func decodeList(_ data: Data) throws -> [BenchRecord] {
        return try JSONDecoder().decode([BenchRecord].self, from: data)
    }
}

extension BenchRecord {
    /// One record per compute-unit setting of one interleaved timing (`profile_coreml` in
    /// runtime/profile.py writes the same rows from a Mac): model is the arch, extra carries the
    /// compute units and the input size.
    public static func fromTiming(_ result: TimingResult, units: [ComputeUnitsName], meta: BundleMeta, warmup: Int,
                                  machine: String) -> [BenchRecord] {
        var records: [BenchRecord] = []
        for (i, unit) in units.enumerated() where i < result.timesMs.count {
            let extra = RecordExtra(computeUnits: unit.rawValue, inputSize: meta.inputSize)
            let initMs: Double? = i < result.initMs.count ? result.initMs[i] : nil
            let record = BenchRecord.fromTimes(result.timesMs[i], model: meta.arch, variant: meta.variant,
                                               warmup: warmup, initMs: initMs, machine: machine, extra: extra)
            if let record = record {
                records.append(record)
            }
        }
        return records
    }
}
