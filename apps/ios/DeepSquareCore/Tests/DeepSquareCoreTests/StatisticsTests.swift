import DeepSquareCore
import Foundation
import XCTest

/// Hand-computed values; runtime/records.py `percentile` and runtime/timing.py `ratio_interval`
/// give the same numbers.
final class StatisticsTests: XCTestCase {
    func testPercentileInterpolatesLikePython() {
        // (n - 1) * q / 100: [1, 2, 3, 4] at 50 -> position 1.5 -> 2.5; at 90 -> 2.7 -> 3.7
        XCTAssertEqual(LatencyStats.percentile([1, 2, 3, 4], 50), 2.5, accuracy: 1e-12)
        XCTAssertEqual(LatencyStats.percentile([1, 2, 3, 4], 90), 3.7, accuracy: 1e-12)
        // [15, 20, 35, 40, 50]: 40 -> position 1.6 -> 20 + 0.6 * 15 = 29; 90 -> 3.6 -> 40 + 0.6 * 10 = 46
        XCTAssertEqual(LatencyStats.percentile([15, 20, 35, 40, 50], 40), 29, accuracy: 1e-12)
        XCTAssertEqual(LatencyStats.percentile([15, 20, 35, 40, 50], 50), 35)
        XCTAssertEqual(LatencyStats.percentile([15, 20, 35, 40, 50], 90), 46, accuracy: 1e-12)
        XCTAssertEqual(LatencyStats.percentile([15, 20, 35, 40, 50], 0), 15)
        XCTAssertEqual(LatencyStats.percentile([15, 20, 35, 40, 50], 100), 50)
        XCTAssertEqual(LatencyStats.percentile([7], 90), 7)
        XCTAssertTrue(LatencyStats.percentile([], 50).isNaN)
    }

    func testMeanAndSampleStd() {
        let values: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        XCTAssertEqual(LatencyStats.mean(values), 5)
        // squared deviations sum to 32; sample variance 32 / 7
        XCTAssertEqual(LatencyStats.sampleStd(values), (32.0 / 7.0).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(LatencyStats.sampleStd(values), 2.138089935299395, accuracy: 1e-12)
        XCTAssertEqual(LatencyStats.sampleStd([3]), 0)
        XCTAssertEqual(LatencyStats.median([3, 1, 2]), 2)
        XCTAssertEqual(LatencyStats.median([4, 1, 3, 2]), 2.5)
    }

    func testRatioInterval() throws {
        // logs ln 2 and ln 4: mean 1.5 ln 2, stdev ln 2 / sqrt 2, half-width 1.96 * ln 2 / 2
        let interval = try XCTUnwrap(RatioInterval.paired(variant: [2, 4], baseline: [1, 1]))
        XCTAssertEqual(interval.ratio, pow(2, 1.5), accuracy: 1e-12)
        XCTAssertEqual(interval.low, pow(2, 1.5 - 0.98), accuracy: 1e-12)
        XCTAssertEqual(interval.high, pow(2, 1.5 + 0.98), accuracy: 1e-12)
        let single = try XCTUnwrap(RatioInterval.paired(variant: [3], baseline: [2]))
        XCTAssertEqual(single.ratio, 1.5, accuracy: 1e-12)
        XCTAssertEqual(single.low, single.high)
        XCTAssertNil(RatioInterval.paired(variant: [1, 2], baseline: [1]))
        XCTAssertNil(RatioInterval.paired(variant: [], baseline: []))
    }
}
