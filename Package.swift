// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Confine",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "confine", targets: ["confine"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .target(
            name: "CSandbox",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        .target(
            name: "Sandbox",
            dependencies: ["CSandbox", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "Domain"),
        .target(
            name: "Store",
            dependencies: ["Domain", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "Engine",
            dependencies: ["Domain", "Store", "Sandbox"]
        ),
        .executableTarget(
            name: "confine",
            dependencies: ["Sandbox", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "confine-bench",
            dependencies: ["Sandbox", "Engine", "Store", "Domain"],
            path: "Benchmarks/LaunchBench"
        ),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox"]),
        .testTarget(name: "CLITests", dependencies: ["Sandbox"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Domain"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Store", "Domain", "Sandbox"]),
    ],
    swiftLanguageModes: [.v6]
)
