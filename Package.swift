// swift-tools-version:6.2
// The dependencies service-lifecycle 2.13.0 and swift-log 1.16.2 declare tools 6.2.

import Foundation
import PackageDescription

let package = Package(
    name: "qmplog",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "qmplog", targets: ["qmplog"]),
        .library(name: "QMP", targets: ["QMP"]),
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "Collector", targets: ["Collector"]),
        .library(name: "Reports", targets: ["Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // Protocol: framing, messages, the read-only client. Knows nothing of storage.
        .target(
            name: "QMP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SQLite's process-wide options (the variadic sqlite3_config, which Swift cannot call).
        .target(
            name: "CSQLiteTuning",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // libvirt's client library, loaded at run time (see LibvirtAPI): nothing to build against.
        .target(name: "Libvirt"),
        // Storage: SQLite through GRDB, and the fleet's PostgreSQL through postgres-nio. Every SQL
        // statement of qmplog is here.
        .target(
            name: "EventStore",
            dependencies: [
                "CSQLiteTuning",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The recorder's own health (commits, monitors, hooks, ship) as Prometheus metrics.
        .target(
            name: "Health",
            dependencies: [.product(name: "Prometheus", package: "swift-prometheus")]
        ),
        // The recorder: joins QMP with EventStore.
        .target(
            name: "Collector",
            dependencies: [
                "QMP",
                "EventStore",
                "Libvirt",
                "Health",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Reports: computes from EventStore's reads; writes no SQL, never opens a socket.
        .target(
            name: "Reports",
            dependencies: ["EventStore"]
        ),
        // Hooks: tells commands about the incidents Reports finds in what the recorder commits.
        .target(
            name: "Hooks",
            dependencies: [
                "EventStore",
                "Reports",
                "Health",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Server: `qmplog serve`, the dashboard, /metrics and the reports over HTTP (Hummingbird).
        .target(
            name: "Server",
            dependencies: [
                "EventStore",
                "Reports",
                "Health",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                // --web-config: TLS, bcrypt for basic_auth_users, SHA-256 for the credentials that passed,
                // and the file's YAML.
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // The response parts HummingbirdCore's pipeline carries, for the security headers' handler.
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "qmplog",
            dependencies: [
                "QMP",
                "EventStore",
                "Collector",
                "Reports",
                "Hooks",
                "Server",
                "Health",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The release binary's start-up, resident for its life: SwiftPM exports every symbol of an
            // executable (47,000 here, tables the loader reads; nothing looks them up), and 135,000
            // relative relocations take 3.2 MiB as RELA entries, 26 KiB packed (DT_RELR, glibc 2.36,
            // lld). About 5 MiB less RSS for a recorder of 1,000 VMs (BENCHMARKS.md section 11).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker",
                        "pack-relative-relocs",
                    ],
                    .when(configuration: .release)
                )
            ]
        ),
        // Test helpers shared by every test target: fake QMP server, real QEMU launcher, fixtures.
        .target(
            name: "QMPTestSupport",
            dependencies: [
                "QMP",
                "EventStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "QMPTests",
            dependencies: [
                "QMP",
                "QMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EventStoreTests",
            dependencies: [
                "EventStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "CollectorTests",
            dependencies: [
                "Collector",
                "Hooks",
                "Libvirt",
                "Reports",
                "QMP",
                "EventStore",
                "QMPTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ReportsTests",
            dependencies: [
                "Reports",
                "Collector",
                "EventStore",
                "QMP",
                "QMPTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Snapshots"]
        ),
        .testTarget(
            name: "qmplogTests",
            dependencies: [
                "qmplog",
                "Hooks",
                "Server",
                "EventStore",
                "QMP",
                "QMPTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Snapshots"]
        ),
    ]
)

// Upcoming language features, on for every target:
// - ExistentialAny (SE-0335): spell existentials `any P`.
// - MemberImportVisibility (SE-0444): a member is visible only where its module is imported.
// - InternalImportsByDefault (SE-0409): `import` is internal; `public import` marks API-visible dependencies.
// In CI (CI=true), every warning of our own targets is an error (SE-0480); dependencies are unaffected.
let warningsAreErrors = ProcessInfo.processInfo.environment["CI"] == "true"

// The C shim takes no Swift settings.
for target in package.targets where target.name != "CSQLiteTuning" {
    var settings = target.swiftSettings ?? []
    if warningsAreErrors { settings.append(.treatAllWarnings(as: .error)) }
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
