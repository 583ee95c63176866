// swift-tools-version: 6.2
import PackageDescription

// Imports point one way: Tensors <- Formats <- Inference <- Train <- QTools.
// Formats never links BLAS; only Inference/Kernels/Gemm.swift imports COpenBLAS.
let safety: [SwiftSetting] = [.strictMemorySafety()]

let package = Package(
    name: "qtools",
    products: [
        .executable(name: "qtools", targets: ["QTools"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // The packed GEMM micro-kernels; optimized even in debug builds (tests run them).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .systemLibrary(name: "CMalloc"),
        .target(name: "Tensors", swiftSettings: safety),
        .target(
            name: "Formats",
            dependencies: [
                "Tensors", "CZlib", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: safety),
        .target(
            name: "Inference", dependencies: ["Tensors", "Formats", "COpenBLAS", "CKernels"],
            swiftSettings: safety),
        .executableTarget(
            name: "QTools",
            dependencies: [
                "Tensors", "Formats", "Inference",
                .target(name: "CMalloc", condition: .when(platforms: [.linux])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: safety),
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "TestSupport"]),
        .testTarget(name: "QToolsTests", dependencies: ["QTools", "Formats", "TestSupport"]),
    ]
)
