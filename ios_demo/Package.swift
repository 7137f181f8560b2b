// swift-tools-version: 6.0
// BBE person instance segmentation: the grouper (pure Swift, builds and tests on Linux), the Core ML
// runner (Apple platforms only) and a command-line benchmark of the grouper on the golden vectors.
// Layout modelled on apple/ml-stable-diffusion: one component per file, a `Configuration` struct.
// The SwiftUI demo app lives in App/ (XcodeGen project.yml) and is not part of this package.
import PackageDescription

let package = Package(
    name: "BBEMobile",
    platforms: [
        .iOS(.v16),
        .macOS(.v13),
    ],
    products: [
        .library(name: "BBEGrouper", targets: ["BBEGrouper"]),
        .library(name: "BBEKit", targets: ["BBEKit"]),
        .executable(name: "bbe-grouper-bench", targets: ["bbe-grouper-bench"]),
    ],
    targets: [
        // Pure Swift (Foundation only): docs/grouper.md, docs/metadata.md, tensor copy helpers.
        .target(
            name: "BBEGrouper",
            path: "Sources/BBEGrouper"
        ),
        // Core ML model loading and prediction. Every file is wrapped in `#if canImport(CoreML)`,
        // so on Linux this target compiles to an empty module.
        .target(
            name: "BBEKit",
            dependencies: ["BBEGrouper"],
            path: "Sources/BBEKit",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // Reader of the golden vectors in ../tests/golden (shared by the bench and the tests; not a product).
        .target(
            name: "BBEGolden",
            dependencies: ["BBEGrouper"],
            path: "Sources/BBEGolden"
        ),
        .executableTarget(
            name: "bbe-grouper-bench",
            dependencies: ["BBEGrouper", "BBEGolden"],
            path: "Sources/bbe-grouper-bench"
        ),
        .testTarget(
            name: "BBEGrouperTests",
            dependencies: ["BBEGrouper", "BBEGolden"],
            path: "Tests/BBEGrouperTests"
        ),
    ]
)
