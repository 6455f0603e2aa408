import CoreML
import DeepSquareCore
import Foundation
import UIKit

/// A thread-safe stop flag for the timing loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    var isStopped: Bool {
        lock.lock()
        defer {
            lock.unlock()
        }
        return stopped
    }
}

/// Times the model under MLModelConfiguration.computeUnits .cpuOnly, .cpuAndGPU and .all with the
/// project's protocol (DeepSquareCore `timeInterleaved`: interleaved run by run, order rotated each
/// round, models re-loaded per block and warmed up), then writes the records JSON.
@MainActor
final class LatencyBenchmark: ObservableObject {
    @Published var rows: [LatencyRow] = []
    @Published var records: [BenchRecord] = []
    @Published var recordsFile: URL?
    @Published var progress: Double = 0
    @Published var running = false
    @Published var message: String?

    let units = ComputeUnitsName.allCases
    private var flag = StopFlag()

    func start(modelURL: URL, meta: BundleMeta, sampleImage: CGImage?, plan: TimingPlan) {
        if running {
            return
        }
        running = true
        progress = 0
        message = nil
        let flag = StopFlag()
        self.flag = flag
        let units = self.units
        let machine = LatencyBenchmark.machineName()
        let total = Double(max(plan.progressTotal(models: units.count), 1))
        Task {
            let outcome = await Task.detached(priority: .userInitiated) { () -> Result<TimingResult, Error> in
                var done = 0
                return Result {
                    let input = try LatencyBenchmark.makeInput(modelURL: modelURL, sampleImage: sampleImage)
                    let openers = units.map { unit in
                        LatencyBenchmark.opener(modelURL: modelURL, unit: unit, input: input)
                    }
                    return try timeInterleaved(openers: openers, plan: plan, isCancelled: { flag.isStopped },
                                               advance: { step in
                        done += step
                        let fraction = Double(done) / total
                        Task { @MainActor in
                            self.progress = fraction
                        }
                    })
                }
            }.value
            finish(outcome, meta: meta, plan: plan, machine: machine)
        }
    }

    func stop() {
        flag.stop()
    }

    private func finish(_ outcome: Result<TimingResult, Error>, meta: BundleMeta, plan: TimingPlan, machine: String) {
        running = false
        switch outcome {
        case .success(let result):
            progress = 1
            rows = LatencyRow.rows(result: result, names: units.map { $0.rawValue }, baseline: 0)
            records = BenchRecord.fromTiming(result, units: units, meta: meta, warmup: plan.warmup, machine: machine)
            do {
                recordsFile = try LatencyBenchmark.writeRecords(records, meta: meta)
            } catch {
                message = "Cannot write the records: \(error.localizedDescription)"
            }
        case .failure(let error):
            if let timing = error as? TimingError, timing == TimingError.cancelled {
                message = "Stopped."
            } else {
                message = "Timing failed: \(error.localizedDescription)"
            }
        }
    }

    /// A session of one compute-unit setting: the model loaded anew, and one prediction per call.
    nonisolated static func opener(modelURL: URL, unit: ComputeUnitsName, input: MLFeatureProvider) -> SessionOpener {
        return {
            let configuration = MLModelConfiguration()
            configuration.computeUnits = unit.mlComputeUnits
            let start = ProcessInfo.processInfo.systemUptime
            let model = try MLModel(contentsOf: modelURL, configuration: configuration)
            let initSeconds = ProcessInfo.processInfo.systemUptime - start
            let run: TimedCall = {
                _ = try model.prediction(from: input)
            }
            return (run: run, initSeconds: initSeconds)
        }
    }

    /// The model's `image` input: the chosen photo, or mid-grey, at the model's input size.
    nonisolated static func makeInput(modelURL: URL, sampleImage: CGImage?) throws -> MLFeatureProvider {
        let model = try MLModel(contentsOf: modelURL)
        let inputs = model.modelDescription.inputDescriptionsByName
        guard let name = inputs.keys.sorted().first,
              let constraint = inputs[name]?.imageConstraint else {
            throw ClassifierError.inputUnavailable("the model has no image input")
        }
        let image = try sampleImage ?? grey(width: constraint.pixelsWide, height: constraint.pixelsHigh)
        let value = try MLFeatureValue(cgImage: image, constraint: constraint, options: nil)
        return try MLDictionaryFeatureProvider(dictionary: [name: value])
    }

    /// A mid-grey picture drawn with Core Graphics (no UIKit off the main thread).
    nonisolated static func grey(width: Int, height: Int) throws -> CGImage {
        let space = CGColorSpaceCreateDeviceRGB()
        let context = CGContext(data: nil, width: width, height: height, bitsPerComponent: 8, bytesPerRow: 0,
                                space: space, bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)
        guard let context = context else {
            throw ClassifierError.inputUnavailable("no bitmap context")
        }
        context.setFillColor(CGColor(red: 0.5, green: 0.5, blue: 0.5, alpha: 1))
        context.fill(CGRect(x: 0, y: 0, width: width, height: height))
        guard let image = context.makeImage() else {
            throw ClassifierError.inputUnavailable("no bitmap")
        }
        return image
    }

    /// Documents/deepsquare-records-ARCH-TIME.json (visible in the Files app; also shared by ShareLink).
    static func writeRecords(_ records: [BenchRecord], meta: BundleMeta) throws -> URL {
        let folder = try FileManager.default.url(for: .documentDirectory, in: .userDomainMask, appropriateFor: nil,
                                                 create: true)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let name = "deepsquare-records-\(meta.arch)-\(formatter.string(from: Date())).json"
        let url = folder.appendingPathComponent(name)
        try BenchRecord.encodeList(records).write(to: url, options: .atomic)
        return url
    }

    /// "iPhone16,1 (iOS 18.1)", the machine field of the records.
    static func machineName() -> String {
        var info = utsname()
        uname(&info)
        var identifier = withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if let simulated = ProcessInfo.processInfo.environment["SIMULATOR_MODEL_IDENTIFIER"] {
            identifier = simulated + " simulator"
        }
        let device = UIDevice.current
        return "\(identifier) (\(device.systemName) \(device.systemVersion))"
    }
}
