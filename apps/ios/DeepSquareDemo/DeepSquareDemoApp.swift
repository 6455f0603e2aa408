import SwiftUI

@main
struct DeepSquareDemoApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
