import Foundation

/// Latency statistics computed like runtime/records.py (`percentile`, `statistics.fmean`,
/// `statistics.stdev`) so records from the phone join those from the Python tools.
public enum LatencyStats {
    /// Linear-interpolated percentile of an already sorted list, q in [0, 100]; NaN when empty.
    public static func percentile(_ sortedValues: [Double], _ q: Double) -> Double {
        if sortedValues.isEmpty {
            return Double.nan
        }
        let pos = Double(sortedValues.count - 1) * q / 100
        let low = Int(pos.rounded(.down))
        let high = Int(pos.rounded(.up))
        return sortedValues[low] + (sortedValues[high] - sortedValues[low]) * (pos - Double(low))
    }

    public static func mean(_ values: [Double]) -> Double {
        if values.isEmpty {
            return Double.nan
        }
        return values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation (n - 1); 0 for fewer than two values, as the record writes it.
    public static func sampleStd(_ values: [Double]) -> Double {
        if values.count < 2 {
            return 0
        }
        let m = mean(values)
        let squares = values.reduce(0.0) { sum, value in sum + (value - m) * (value - m) }
        return (squares / Double(values.count - 1)).squareRoot()
    }

    /// Python's `statistics.median`: the mean of the two middle values of an even count.
    public static func median(_ values: [Double]) -> Double {
        if values.isEmpty {
            return Double.nan
        }
        let ordered = values.sorted()
        let mid = ordered.count / 2
        if ordered.count % 2 == 1 {
            return ordered[mid]
        }
        return (ordered[mid - 1] + ordered[mid]) / 2
    }
}

/// A latency ratio to a baseline: the geometric mean of paired per-round ratios with its 95%
/// interval (normal approximation on the logs), as `ratio_interval` in runtime/timing.py.
public struct RatioInterval: Equatable, Sendable {
    public let ratio: Double
    public let low: Double
    public let high: Double

    public init(ratio: Double, low: Double, high: Double) {
        self.ratio = ratio
        self.low = low
        self.high = high
    }

    /// nil when the lists are empty or not paired (different lengths).
    public static func paired(variant: [Double], baseline: [Double]) -> RatioInterval? {
        if variant.isEmpty || variant.count != baseline.count {
            return nil
        }
        let logs = zip(variant, baseline).map { pair in log(pair.0 / pair.1) }
        let center = LatencyStats.mean(logs)
        let spread = logs.count > 1 ? LatencyStats.sampleStd(logs) / Double(logs.count).squareRoot() : 0
        let half = 1.96 * spread
        return RatioInterval(ratio: exp(center), low: exp(center - half), high: exp(center + half))
    }
}
