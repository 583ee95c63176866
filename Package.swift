// swift-tools-version: 6.2
import PackageDescription

// Imports point one way (docs/architecture.md; scripts/check-imports.sh enforces it):
//   Tensors -> Formats -> QToolConfig -> Engine -> Models -> Train -> QTools
// Engine knows no QTool words and imports only Tensors and the C kernels; only
// Engine/Kernels/Gemm.swift imports COpenBLAS.
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
        // The C kernels (packed GEMM micro-kernels, Winograd transforms, pooling, linear).
        // Optimized in every configuration by `#pragma GCC optimize` in each file (see
        // ckernels.h), not by unsafeFlags, which would keep qtools from being a dependency.
        .target(name: "CKernels"),
        .systemLibrary(name: "CMalloc"),
        // JPEG and PNG decoding for the ImageNet loader: libjpeg-turbo and libpng (system
        // packages libjpeg-dev, libpng-dev), their setjmp/longjmp error handling kept in C.
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]),
        .target(name: "Tensors", swiftSettings: safety),
        .target(
            name: "Formats",
            dependencies: [
                "Tensors", "CZlib", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: safety),
        .target(name: "QToolConfig", dependencies: ["Tensors", "Formats"], swiftSettings: safety),
        .target(name: "Engine", dependencies: ["Tensors", "COpenBLAS", "CKernels"], swiftSettings: safety),
        .target(
            name: "Models", dependencies: ["Tensors", "Formats", "QToolConfig", "Engine"],
            swiftSettings: safety),
        .target(name: "Train", dependencies: ["Tensors", "Engine", "Models", "CImageCodecs"], swiftSettings: safety),
        .executableTarget(
            name: "QTools",
            dependencies: [
                "Tensors", "Formats", "QToolConfig", "Engine", "Models", "Train",
                .target(name: "CMalloc", condition: .when(platforms: [.linux])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: safety),
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        .testTarget(name: "QToolConfigTests", dependencies: ["QToolConfig", "Formats", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TestSupport"]),
        .testTarget(
            name: "ModelsTests", dependencies: ["Models", "Engine", "QToolConfig", "Formats", "TestSupport"]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "Models", "Formats", "QToolConfig", "TestSupport"]),
        .testTarget(
            name: "QToolsTests", dependencies: ["QTools", "Formats", "QToolConfig", "TestSupport"]),
    ]
)
