// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Confine",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "confine", targets: ["confine"]),
        .executable(name: "confine-spawner", targets: ["confine-spawner"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "CSandbox",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        // The small process sandboxes are born from (C only; started by exec, never forked from
        // a grown server). Sources/confine-spawner/child/ is everything after clone().
        .executableTarget(
            name: "confine-spawner",
            dependencies: ["CSandbox"],
            cSettings: [.define("_GNU_SOURCE")],
            // Every symbol bound at start (and the table read-only): code after clone() never
            // enters the dynamic linker — the program's process shares init's memory until execve.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-z", "-Xlinker", "now", "-Xlinker", "-z", "-Xlinker", "relro"])]
        ),
        // Words for people: human units, "did you mean", errno and signal names, quoting.
        // The bottom of the house: it imports nothing of Confine.
        .target(name: "HumanText"),
        .target(
            name: "Sandbox",
            dependencies: ["CSandbox", "HumanText", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "Domain"),
        // The API's wire shapes (Codable, Sendable), as the document describes them: what the
        // client reads and sends, and the fields the server accepts in bodies.
        .target(name: "Wire"),
        .target(name: "Credentials", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Store",
            dependencies: [
                "Domain",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Engine",
            dependencies: [
                "Domain", "Store", "Sandbox", "Credentials",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "API",
            dependencies: [
                "Domain", "Store", "Engine", "Sandbox", "Credentials", "HumanText", "Wire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Resources/openapi.yaml")]
        ),
        .executableTarget(
            name: "confine",
            dependencies: [
                "Sandbox", "Domain", "Store", "Engine", "API", "Credentials", "HumanText", "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "confine-bench",
            dependencies: ["Sandbox", "Engine", "Store", "Domain"],
            path: "Benchmarks/LaunchBench"
        ),
        // The test harness shared by the API and CLI tests: a `confine serve` process.
        .target(
            name: "ConfineTestSupport",
            dependencies: [.product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "HumanTextTests", dependencies: ["HumanText"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain"]),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "HumanText", "ConfineTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["Sandbox", "ConfineTestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Domain", "ConfineTestSupport"]),
        .testTarget(name: "CredentialsTests", dependencies: ["Credentials"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Store", "Domain", "Sandbox", "ConfineTestSupport"]),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "Engine", "Store", "Domain", "Sandbox", "Credentials", "Wire", "ConfineTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
