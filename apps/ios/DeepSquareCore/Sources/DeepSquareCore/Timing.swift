import Foundation

/// The project's timing protocol (runtime/timing.py) for the configurations of one model:
/// interleaved run by run with the order rotated every round (A B C, B C A, C A B, ...), and the
/// rounds split into blocks, each of which opens its sessions anew (in rotated order) and warms
/// them up, so neither drift nor "the first session created" favours one configuration.
public struct TimingPlan: Equatable, Sendable {
    /// Timed rounds in all; each round times every configuration once.
    public var runs: Int
    /// Untimed rounds after each block's new sessions.
    public var warmup: Int

    public init(runs: Int = 30, warmup: Int = 5) {
        self.runs = max(runs, 0)
        self.warmup = max(warmup, 0)
    }

    /// The order of round `round`: every configuration takes every position equally often.
    public static func rotation(count: Int, round: Int) -> [Int] {
        if count <= 0 {
            return []
        }
        let start = round % count
        return Array(start..<count) + Array(0..<start)
    }

    /// Rounds of each block: one block per configuration (at most one per round).
    public func blocks(models: Int) -> [Int] {
        let count = min(models, runs)
        if count <= 0 {
            return []
        }
        return (0..<count).map { b in runs / count + (b < runs % count ? 1 : 0) }
    }

    /// Rounds reported to `advance` in all, warm-up included (for a progress bar).
    public func progressTotal(models: Int) -> Int {
        return blocks(models: models).count * warmup + runs
    }
}

/// What `timeInterleaved` measured.
public struct TimingResult: Equatable, Sendable {
    /// Per configuration, in milliseconds, paired by round.
    public var timesMs: [[Double]]
    /// Per configuration: the median over its blocks of the time to open a session, milliseconds.
    public var initMs: [Double]
    public var rounds: Int

    public init(timesMs: [[Double]], initMs: [Double], rounds: Int) {
        self.timesMs = timesMs
        self.initMs = initMs
        self.rounds = rounds
    }
}

public enum TimingError: Error, Equatable {
    case cancelled
}

/// One timed call of an open session.
public typealias TimedCall = () throws -> Void

/// Opens a session of one configuration: its timed call and the seconds the opening took.
public typealias SessionOpener = () throws -> (run: TimedCall, initSeconds: Double)

/// Time every configuration, interleaved in rotating order, sessions re-opened per block
/// (`time_interleaved` in runtime/timing.py, with a fixed number of runs).
/// `now` is a clock in seconds; `advance` is told of every round done (warm-up included).
public func timeInterleaved(
    openers: [SessionOpener],
    plan: TimingPlan,
    now: () -> Double = { ProcessInfo.processInfo.systemUptime },
    isCancelled: () -> Bool = { false },
    advance: (Int) -> Void = { _ in }
) throws -> TimingResult {
    let count = openers.count
    var times = Array(repeating: [Double](), count: count)
    var inits = Array(repeating: [Double](), count: count)
    var rounds = 0
    for (block, share) in plan.blocks(models: count).enumerated() {
        var calls: [TimedCall?] = Array(repeating: nil, count: count)
        for i in TimingPlan.rotation(count: count, round: block) {
            let opened = try openers[i]()
            calls[i] = opened.run
            inits[i].append(opened.initSeconds * 1e3)
        }
        for warm in 0..<plan.warmup {
            if isCancelled() {
                throw TimingError.cancelled
            }
            for i in TimingPlan.rotation(count: count, round: warm) {
                try calls[i]?()
            }
            advance(1)
        }
        for _ in 0..<share {
            if isCancelled() {
                throw TimingError.cancelled
            }
            for i in TimingPlan.rotation(count: count, round: rounds) {
                let start = now()
                try calls[i]?()
                times[i].append((now() - start) * 1e3)
            }
            rounds += 1
            advance(1)
        }
        // this block's sessions are released here, before the next block opens its own
        calls.removeAll()
    }
    return TimingResult(timesMs: times, initMs: inits.map { LatencyStats.median($0) }, rounds: rounds)
}

/// The three Core ML compute-unit settings the app compares (`MLComputeUnits` names; the app maps
/// them, the core does not import Core ML).
public enum ComputeUnitsName: String, CaseIterable, Codable, Sendable {
    case cpuOnly
    case cpuAndGPU
    case all

    /// The label `deepsquare profile ios` uses (coremltools' ComputeUnit names).
    public var coremltoolsName: String {
        switch self {
        case .cpuOnly:
            return "CPU_ONLY"
        case .cpuAndGPU:
            return "CPU_AND_GPU"
        case .all:
            return "ALL"
        }
    }
}

/// One row of the latency screen: a configuration's summary and its ratio to the baseline.
public struct LatencyRow: Equatable, Sendable {
    public let name: String
    public let p50Ms: Double
    public let p90Ms: Double
    public let meanMs: Double
    public let initMs: Double
    /// nil for the baseline itself.
    public let ratio: RatioInterval?

    /// Rows for `names` (in the order of `result.timesMs`), ratios to `names[baseline]`.
    public static func rows(result: TimingResult, names: [String], baseline: Int = 0) -> [LatencyRow] {
        var rows: [LatencyRow] = []
        for (i, times) in result.timesMs.enumerated() {
            let ordered = times.sorted()
            var ratio: RatioInterval? = nil
            if i != baseline && baseline < result.timesMs.count {
                ratio = RatioInterval.paired(variant: times, baseline: result.timesMs[baseline])
            }
            rows.append(LatencyRow(
                name: i < names.count ? names[i] : "config \(i)",
                p50Ms: LatencyStats.percentile(ordered, 50),
                p90Ms: LatencyStats.percentile(ordered, 90),
                meanMs: LatencyStats.mean(times),
                initMs: i < result.initMs.count ? result.initMs[i] : Double.nan,
                ratio: ratio
            ))
        }
        return rows
    }
}
