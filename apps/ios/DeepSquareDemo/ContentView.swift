import DeepSquareCore
import PhotosUI
import SwiftUI

struct ContentView: View {
    @StateObject private var demo = DemoModel()
    @State private var pickerItem: PhotosPickerItem?
    @State private var showCamera = false

    var body: some View {
        NavigationStack {
            List {
                modelSection
                photoSection
                if !demo.predictions.isEmpty {
                    Section("Top 5") {
                        ForEach(demo.predictions, id: \.label) { prediction in
                            PredictionRow(prediction: prediction)
                        }
                    }
                }
                if let classifier = demo.classifier {
                    Section("Latency") {
                        NavigationLink {
                            LatencyView(modelURL: classifier.modelURL, meta: classifier.meta,
                                        sampleImage: demo.image?.cgImage)
                        } label: {
                            Label("Compare compute units", systemImage: "stopwatch")
                        }
                    }
                }
            }
            .navigationTitle("DeepSquare")
        }
        .onChange(of: pickerItem) { item in
            Task {
                await demo.load(item)
            }
        }
        .sheet(isPresented: $showCamera) {
            CameraPicker { taken in
                demo.classify(taken)
            }
            .ignoresSafeArea()
        }
    }

    private var modelSection: some View {
        Section("Model") {
            if let classifier = demo.classifier {
                LabeledContent("Architecture", value: classifier.meta.arch)
                LabeledContent("Variant", value: classifier.meta.variant)
                LabeledContent("Input", value: "\(classifier.meta.inputSize) x \(classifier.meta.inputSize) RGB")
                LabeledContent("Classes", value: "\(classifier.meta.classes.count)")
                LabeledContent("Labels from", value: classifier.metaSource)
                Text(demo.selfCheck)
                    .font(.footnote)
                    .foregroundStyle(demo.selfCheck.hasPrefix("self-check passed") ? Color.secondary : Color.red)
            } else {
                Text(demo.loadError ?? "Loading the model...")
                    .foregroundStyle(.red)
            }
        }
    }

    private var photoSection: some View {
        Section("Photo") {
            if let image = demo.image {
                Image(uiImage: image)
                    .resizable()
                    .scaledToFit()
                    .frame(maxHeight: 260)
                    .frame(maxWidth: .infinity)
            }
            HStack {
                PhotosPicker(selection: $pickerItem, matching: .images) {
                    Label("Photos", systemImage: "photo.on.rectangle")
                }
                Spacer()
                Button {
                    showCamera = true
                } label: {
                    Label("Camera", systemImage: "camera")
                }
                .disabled(!CameraPicker.isAvailable)
            }
            .buttonStyle(.bordered)
            if !demo.status.isEmpty {
                Text(demo.status)
                    .font(.footnote)
                    .foregroundStyle(.secondary)
            }
        }
    }
}

/// One top-5 row: label, probability and a bar as long as the probability.
struct PredictionRow: View {
    let prediction: Prediction

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            HStack {
                Text(prediction.label)
                    .font(.body.monospaced())
                Spacer()
                Text(String(format: "%.1f%%", prediction.probability * 100))
                    .monospacedDigit()
            }
            GeometryReader { geometry in
                ZStack(alignment: .leading) {
                    Capsule()
                        .fill(Color.secondary.opacity(0.2))
                    Capsule()
                        .fill(Color.accentColor)
                        .frame(width: geometry.size.width * CGFloat(min(max(prediction.probability, 0), 1)))
                }
            }
            .frame(height: 8)
        }
        .padding(.vertical, 2)
    }
}
