// swift-tools-version:6.0
// The floor of the many-VMs benchmark: SwiftNIO reading the same sockets and discarding the bytes.
// A separate package so that qmplog's build and tests never compile it; bench.py builds it.
import PackageDescription

let package = Package(
    name: "nio-floor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
    ]
)
