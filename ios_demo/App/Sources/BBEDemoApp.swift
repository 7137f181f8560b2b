import SwiftUI

/// The BBE demo: live camera segmentation, a photo picker and a benchmark screen.
@main
struct BBEDemoApp: App {
    @StateObject private var store = PredictorStore()

    var body: some Scene {
        WindowGroup {
            TabView {
                CameraScreen()
                    .tabItem { Label("Camera", systemImage: "camera") }
                PhotoScreen()
                    .tabItem { Label("Photo", systemImage: "photo") }
                BenchmarkScreen()
                    .tabItem { Label("Benchmark", systemImage: "speedometer") }
            }
            .environmentObject(store)
            .task { await store.load() }
        }
    }
}
