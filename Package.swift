// swift-tools-version:6.0
import PackageDescription

// Pure logic (no I/O): VIPModel, VIPManifest, VIPAllocation, VIPLease, VIPStore (the interface), VIPAnnounce, VIPPacket.
// Pure data path: VIPForwarding. Adapters: VIPFileStore, VIPLink, VIPNFTables (with the C system libraries). Logic that drives a store: VIPController, VIPClient. Thin executable: metalvip.
let package = Package(
    name: "MetalVIP",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "metalvip", targets: ["metalvip"]),
        .executable(name: "metalvip-bench", targets: ["metalvip-bench"]),
        .executable(name: "metalvip-lab", targets: ["metalvip-lab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // Addresses, ranges and the Kubernetes/MetalLB resource types.
        .target(name: "VIPModel"),
        // YAML manifests -> validated resources, with file/document/field errors.
        .target(name: "VIPManifest", dependencies: ["VIPModel", .product(name: "Yams", package: "Yams")]),
        // Who gets which address: the interval engine and the MetalLB allocation policy.
        .target(name: "VIPAllocation", dependencies: ["VIPModel"]),
        // Lease rules with observer-clock expiry (leader election now, node leases later).
        .target(name: "VIPLease"),
        // The store interface every backend implements, and the record layout on top of it.
        .target(name: "VIPStore", dependencies: ["VIPModel", "VIPLease"]),
        // ARP and NDP frames: parse (never trapping on the wire), build, checksum. Pure.
        .target(name: "VIPPacket", dependencies: ["VIPModel"]),
        // Who announces what: VIP groups, rendezvous choice, node leases and claim rules.
        .target(name: "VIPAnnounce", dependencies: ["VIPModel", "VIPStore", "VIPLease"]),
        // A node's speaker: node lease, claims, the fenced answer table, and the responders.
        .target(name: "VIPSpeaker", dependencies: [
            "VIPAnnounce", "VIPForwarding", "VIPHealthCheck", "VIPLease", "VIPLink", "VIPModel", "VIPPacket", "VIPStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Endpoint health checks (TCP connect, HTTP status) with rise/fall, spread and bounded in flight.
        .target(name: "VIPHealthCheck", dependencies: [
            "VIPModel",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Linux packet/filter/namespace definitions that Glibc does not export (header-only).
        .systemLibrary(name: "CLinuxShim"),
        // libpcap, used only to compile filter expressions to classic BPF.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // libnl-route-3: the rtnetlink link cache and its change events.
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        // libnftables: nft scripts run in-process, each one transaction.
        .systemLibrary(name: "CNFTables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        // Raw AF_PACKET sockets, BPF filters, link state and namespaces: the speaker's Linux adapter.
        .target(name: "VIPLink", dependencies: ["VIPModel", "CLinuxShim", "CPcap", "CNetlink"]),
        // The data path as data: services, endpoints and health -> forwarding state, and its nft text and diffs. Pure.
        .target(name: "VIPForwarding", dependencies: ["VIPModel"]),
        // Applies the forwarding state's nft scripts through libnftables; counters and forwarding sysctls.
        .target(name: "VIPNFTables", dependencies: ["VIPForwarding", "VIPModel", "CNFTables"]),
        // The embedded backend: one file per record, flock + CAS, inotify watch.
        .target(name: "VIPFileStore", dependencies: ["VIPStore"]),
        // SQLite, the engine of the embedded database backend.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The embedded backend on SQLite (WAL): one transaction per commit, inotify on its log for watches.
        .target(name: "VIPSQLiteStore", dependencies: ["VIPStore", "CSQLite"]),
        // The distributed backend: etcd v3 over gRPC (grpc-swift, one HTTP/2 connection per member), with watch resume.
        .target(name: "VIPEtcdStore", dependencies: [
            "VIPStore",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["API/etcd.proto"]),
        // Metrics (swift-metrics exported by swift-prometheus), the HTTP status endpoints (swift-nio),
        // line-oriented logs, and the store decorator that times every operation.
        .target(name: "VIPObservability", dependencies: [
            "VIPStore",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Reconciles services to addresses; holds the controller lease.
        .target(name: "VIPController", dependencies: [
            "VIPModel", "VIPAllocation", "VIPLease", "VIPStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // What a user does against a store: apply, delete, and the get/describe views.
        .target(name: "VIPClient", dependencies: [
            "VIPModel", "VIPManifest", "VIPAllocation", "VIPAnnounce", "VIPLease", "VIPStore",
            .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(name: "metalvip", dependencies: [
            "VIPModel", "VIPClient", "VIPStore", "VIPFileStore", "VIPSQLiteStore", "VIPEtcdStore", "VIPController", "VIPLease", "VIPLink", "VIPSpeaker",
            "VIPObservability", "VIPAllocation", "VIPForwarding", "VIPHealthCheck", "VIPNFTables", "CLinuxShim",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The namespace LAN from the outside, for tests and bench: build it, run the binaries, read probes.
        .target(name: "VIPLabHarness", dependencies: ["VIPLink"]),
        // Client-side probes for the namespace LAN (tests and bench): ARP requests out, libpcap capture in;
        // and `serve`, the HTTP backend each node runs (swift-nio).
        .executableTarget(name: "metalvip-lab", dependencies: [
            "VIPLabHarness", "VIPLink", "VIPModel", "VIPPacket", "CPcap",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Benchmarks (Tools/bench, release build): not tests, they print tables.
        .executableTarget(name: "metalvip-bench", dependencies: [
            "VIPModel", "VIPAllocation", "VIPAnnounce", "VIPLabHarness", "VIPLease", "VIPPacket", "VIPSpeaker", "VIPStore",
            "VIPForwarding", "VIPNFTables", "VIPLink", "VIPEtcdStore", "VIPClient", "VIPController",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "VIPModelTests", dependencies: ["VIPModel"]),
        .testTarget(name: "VIPManifestTests", dependencies: ["VIPManifest", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "VIPAllocationTests", dependencies: ["VIPAllocation", "VIPModel", "VIPPacket"]),
        .testTarget(name: "VIPLeaseTests", dependencies: ["VIPLease"]),
        .testTarget(name: "VIPPacketTests", dependencies: ["VIPPacket", "VIPModel"]),
        .testTarget(name: "VIPLinkTests", dependencies: ["VIPLink", "VIPModel", "CLinuxShim"]),
        .testTarget(name: "VIPAnnounceTests", dependencies: ["VIPAnnounce", "VIPModel", "VIPStore", "VIPLease"]),
        .testTarget(name: "VIPSpeakerTests", dependencies: [
            "VIPSpeaker", "VIPAnnounce", "VIPController", "VIPClient", "VIPFileStore", "VIPLink", "VIPModel", "VIPStore", "VIPLease",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "VIPForwardingTests", dependencies: ["VIPForwarding", "VIPModel"]),
        // As root: NFTables inside throwaway network namespaces, checked with `nft list ruleset` and real traffic.
        .testTarget(name: "VIPNFTablesTests", dependencies: ["VIPNFTables", "VIPForwarding", "VIPModel", "VIPLink", "VIPLabHarness"]),
        .testTarget(name: "VIPStoreTests", dependencies: ["VIPStore"]),
        // Loopback listeners only (127.0.0.1 and ::1) for the network prober.
        .testTarget(name: "VIPHealthCheckTests", dependencies: [
            "VIPHealthCheck", "VIPModel",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The behaviour every store backend must show, run by each backend's tests.
        .target(name: "VIPStoreConformance", dependencies: ["VIPStore"], path: "Tests/VIPStoreConformance"),
        .testTarget(name: "VIPFileStoreTests", dependencies: ["VIPFileStore", "VIPStore", "VIPStoreConformance"]),
        .testTarget(name: "VIPSQLiteStoreTests", dependencies: ["VIPSQLiteStore", "VIPStore", "VIPStoreConformance"]),
        // As root: real etcd members (loopback and namespaces) started by the tests themselves.
        .testTarget(name: "VIPEtcdStoreTests", dependencies: [
            "VIPEtcdStore", "VIPStore", "VIPStoreConformance", "VIPLabHarness",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "VIPControllerTests", dependencies: [
            "VIPController", "VIPClient", "VIPFileStore", "VIPLease", "VIPModel", "VIPStore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "MetalVIPCLITests", dependencies: ["VIPLabHarness"]),
        // As root, on a namespace LAN (Tools/lab): the real binaries, checked from the client side.
        .testTarget(name: "MetalVIPLANTests", dependencies: ["VIPLabHarness"]),
        .testTarget(name: "VIPObservabilityTests", dependencies: [
            "VIPObservability", "VIPStore", "VIPLabHarness",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
