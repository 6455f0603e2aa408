import DeepSquareCore
import SwiftUI

/// Times the model under the three compute-unit settings, shows p50/p90 and the ratios to
/// cpuOnly, and shares the records JSON for `deepsquare bench --add-records`.
struct LatencyView: View {
    let modelURL: URL
    let meta: BundleMeta
    let sampleImage: CGImage?
    @StateObject var bench = LatencyBenchmark()
    @State var rounds = 30
    @State var warmup = 5

    var body: some View {
        List {
            Section("Plan") {
                Stepper("Timed rounds: \(rounds)", value: $rounds, in: 3...300, step: 3)
                Stepper("Warm-up rounds per block: \(warmup)", value: $warmup, in: 0...20)
                Text(planText)
                    .font(.footnote)
                    .foregroundStyle(.secondary)
                if bench.running {
                    ProgressView(value: bench.progress)
                    Button("Stop", role: .destructive) {
                        bench.stop()
                    }
                } else {
                    Button("Time the model") {
                        bench.start(modelURL: modelURL, meta: meta, sampleImage: sampleImage,
                                    plan: TimingPlan(runs: rounds, warmup: warmup))
                    }
                }
            }
            if let message = bench.message {
                Section {
                    Text(message)
                        .foregroundStyle(.red)
                }
            }
            if !bench.rows.isEmpty {
                Section("Latency, ms (ratio to cpuOnly, 95% interval)") {
                    Grid(alignment: .leading, horizontalSpacing: 12, verticalSpacing: 6) {
                        GridRow {
                            Text("units").bold()
                            Text("p50").bold()
                            Text("p90").bold()
                            Text("ratio").bold()
                        }
                        ForEach(bench.rows, id: \.name) { row in
                            GridRow {
                                Text(row.name)
                                Text(String(format: "%.2f", row.p50Ms)).monospacedDigit()
                                Text(String(format: "%.2f", row.p90Ms)).monospacedDigit()
                                Text(LatencyView.ratioText(row.ratio)).monospacedDigit()
                            }
                        }
                    }
                    .font(.callout)
                }
                Section("Records") {
                    if let url = bench.recordsFile {
                        ShareLink(item: url) {
                            Label("Share records JSON", systemImage: "square.and.arrow.up")
                        }
                        Text("Also in Files > On My iPhone > DeepSquare: \(url.lastPathComponent). On the computer: "
                             + "deepsquare bench --add-records \(url.lastPathComponent)")
                            .font(.footnote)
                            .foregroundStyle(.secondary)
                    }
                }
            }
        }
        .navigationTitle("Latency")
        .onDisappear {
            bench.stop()
        }
    }

    private var planText: String {
        let blocks = TimingPlan(runs: rounds, warmup: warmup).blocks(models: ComputeUnitsName.allCases.count).count
        return "cpuOnly, cpuAndGPU and all are timed run by run, interleaved, the order rotated every round; "
            + "the rounds are split into \(blocks) blocks, each loading the three models anew and warming them up. "
            + "Input: \(sampleImage == nil ? "a grey" : "the chosen") picture at \(meta.inputSize) px."
    }

    static func ratioText(_ interval: RatioInterval?) -> String {
        guard let interval = interval else {
            return "1 (baseline)"
        }
        return String(format: "%.2f (%.2f-%.2f)", interval.ratio, interval.low, interval.high)
    }
}
