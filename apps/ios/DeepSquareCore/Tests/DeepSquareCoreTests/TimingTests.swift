import DeepSquareCore
import Foundation
import XCTest

final class TimingTests: XCTestCase {
    func testRotation() {
        XCTAssertEqual(TimingPlan.rotation(count: 3, round: 0), [0, 1, 2])
        XCTAssertEqual(TimingPlan.rotation(count: 3, round: 1), [1, 2, 0])
        XCTAssertEqual(TimingPlan.rotation(count: 3, round: 2), [2, 0, 1])
        XCTAssertEqual(TimingPlan.rotation(count: 3, round: 4), [1, 2, 0])
        XCTAssertEqual(TimingPlan.rotation(count: 0, round: 4), [])
    }

    func testBlocks() {
        XCTAssertEqual(TimingPlan(runs: 30, warmup: 5).blocks(models: 3), [10, 10, 10])
        XCTAssertEqual(TimingPlan(runs: 31, warmup: 5).blocks(models: 3), [11, 10, 10])
        XCTAssertEqual(TimingPlan(runs: 2, warmup: 5).blocks(models: 3), [1, 1])
        XCTAssertEqual(TimingPlan(runs: 0, warmup: 5).blocks(models: 3), [])
        XCTAssertEqual(TimingPlan(runs: 30, warmup: 5).progressTotal(models: 3), 45)
    }

    func testInterleavedOrderAndTimes() throws {
        final class Log {
            var events: [String] = []
            var clock = 0.0
        }
        let log = Log()
        // configuration i opens in 0.01 * (i + 1) s and runs in 0.001 * (i + 1) s of the fake clock
        let openers: [SessionOpener] = (0..<3).map { (i: Int) -> SessionOpener in
            return {
                log.events.append("open\(i)")
                let run: TimedCall = {
                    log.events.append("run\(i)")
                    log.clock += 0.001 * Double(i + 1)
                }
                return (run: run, initSeconds: 0.01 * Double(i + 1))
            }
        }
        var advanced = 0
        let result = try timeInterleaved(openers: openers, plan: TimingPlan(runs: 3, warmup: 1),
                                         now: { log.clock }, advance: { advanced += $0 })
        let expected = [
            "open0", "open1", "open2", "run0", "run1", "run2", "run0", "run1", "run2",
            "open1", "open2", "open0", "run0", "run1", "run2", "run1", "run2", "run0",
            "open2", "open0", "open1", "run0", "run1", "run2", "run2", "run0", "run1",
        ]
        XCTAssertEqual(log.events, expected)
        XCTAssertEqual(result.rounds, 3)
        XCTAssertEqual(advanced, TimingPlan(runs: 3, warmup: 1).progressTotal(models: 3))
        for i in 0..<3 {
            XCTAssertEqual(result.timesMs[i].count, 3)
            for ms in result.timesMs[i] {
                XCTAssertEqual(ms, Double(i + 1), accuracy: 1e-9)
            }
            XCTAssertEqual(result.initMs[i], 10 * Double(i + 1), accuracy: 1e-9)
        }
        let rows = LatencyRow.rows(result: result, names: ["cpuOnly", "cpuAndGPU", "all"])
        XCTAssertNil(rows[0].ratio)
        XCTAssertEqual(rows[1].ratio?.ratio ?? 0, 2, accuracy: 1e-6)
        XCTAssertEqual(rows[2].p50Ms, 3, accuracy: 1e-9)
    }

    func testCancellation() {
        let opener: SessionOpener = {
            return (run: {}, initSeconds: 0)
        }
        XCTAssertThrowsError(try timeInterleaved(openers: [opener], plan: TimingPlan(runs: 5, warmup: 0),
                                                 isCancelled: { true })) { error in
            XCTAssertEqual(error as? TimingError, TimingError.cancelled)
        }
    }
}
