import Foundation
import Testing

/// Runs the real `metalvip` binary against a temporary store, as a user would.
final class CLI: Sendable {
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["METALVIP_BINARY"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/metalvip").path
    }()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The temporary directory: the file store itself, or only the outputs when `store` is etcd.
    let directory: String
    /// What METALVIP_STORE is set to.
    let store: String

    /// `scheme` (`file:`, `sqlite:`) chooses the embedded store's kind; without one a new directory is a database.
    init(store location: String? = nil, scheme: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-cli-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = location ?? scheme + directory
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts the binary with output going to files, so large output can never block it.
    func start(_ arguments: [String], stdin: String? = nil, outputPrefix: String = UUID().uuidString) throws -> (Process, URL, URL) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["METALVIP_STORE"] = store
        process.environment = environment
        let out = URL(fileURLWithPath: directory + "-\(outputPrefix).out")
        let err = URL(fileURLWithPath: directory + "-\(outputPrefix).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let input = URL(fileURLWithPath: directory + "-\(outputPrefix).in")
            try stdin.write(to: input, atomically: true, encoding: .utf8)
            process.standardInput = try FileHandle(forReadingFrom: input)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        return (process, out, err)
    }

    /// Waits for exit without blocking a cooperative thread (there are only two here).
    static func exit(of process: Process) async {
        for _ in 0..<6000 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    @discardableResult
    func run(_ arguments: String..., stdin: String? = nil) async throws -> Output {
        let (process, out, err) = try start(arguments, stdin: stdin)
        await Self.exit(of: process)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        return Output(status: process.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
                      stderr: try String(contentsOf: err, encoding: .utf8))
    }

    func example(_ name: String) -> String { Self.repository.appendingPathComponent("Config/examples/\(name)").path }
}

@Suite(.serialized) struct CLITests {
    @Test func applyReconcileGetDescribe() async throws {
        let cli = try CLI()
        let applied = try await cli.run("apply", "-f", cli.example("pools.yaml"), "-f", cli.example("services.yaml"))
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("ipaddresspool.metallb.io/lan created"))
        #expect(applied.stdout.contains("l2advertisement.metallb.io/lan created"))
        #expect(applied.stdout.contains("service/web created"))
        #expect(applied.stdout.contains("skipped deployment.apps/web (not handled)"))

        let pending = try await cli.run("get", "services")
        #expect(pending.stdout.split(separator: "\n").first?.split(separator: " ", omittingEmptySubsequences: true)
                == ["NAME", "TYPE", "EXTERNAL-IP", "PORT(S)", "AGE"])
        #expect(pending.stdout.contains("<pending>"))

        let once = try await cli.run("controller", "--once")
        #expect(once.status == 0, "\(once.stderr)")
        let services = try await cli.run("get", "services")
        let web = services.stdout.split(separator: "\n").first { $0.hasPrefix("web ") }.map(String.init) ?? ""
        #expect(web.split(separator: " ", omittingEmptySubsequences: true).prefix(4) == ["web", "LoadBalancer", "192.0.2.11", "80/TCP"])
        #expect(!services.stdout.contains("<pending>"))

        let json = try await cli.run("get", "services", "-o", "json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(list["kind"] as? String == "List")
        let items = try #require(list["items"] as? [[String: Any]])
        let dual = try #require(items.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "dual" })
        let ingress = ((dual["status"] as? [String: Any])?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]]
        #expect(ingress?.compactMap { $0["ip"] as? String } == ["192.0.2.10", "2001:db8::10"])
        let annotations = (dual["metadata"] as? [String: Any])?["annotations"] as? [String: String]
        #expect(annotations?["metallb.io/ip-allocated-from-pool"] == "lan")

        let yaml = try await cli.run("get", "services", "-n", "team-a", "-o", "yaml")
        #expect(yaml.stdout.contains("ip: 198.51.100.1"))

        let pools = try await cli.run("get", "ipaddresspools")
        let lan = pools.stdout.split(separator: "\n").first { $0.hasPrefix("lan ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        // lan: 41 IPv4 of which 2 in use (web+web-tls share one, dual has one); 65 IPv6 of which 1 in use.
        #expect(lan?.suffix(4) == ["2", "39", "1", "64"])

        let describe = try await cli.run("describe", "service", "dual")
        #expect(describe.stdout.contains("LoadBalancer Ingress:"))
        #expect(describe.stdout.contains("192.0.2.10,2001:db8::10"))
        #expect(describe.stdout.contains("IPAllocated"))
        #expect(describe.stdout.contains("Assigned IP [\"192.0.2.10\",\"2001:db8::10\"]"))
    }

    @Test func badInputFailsWithOneMessageAndWritesNothing() async throws {
        let cli = try CLI()
        let yaml = """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: good}
            spec: {addresses: [192.0.2.0/24]}
            ---
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: bad}
            spec: {addresses: [192.0.2.128/25]}
            """
        let result = try await cli.run("apply", "-f", "-", stdin: yaml)
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "error: <stdin>: document 2 (IPAddressPool \"bad\"): spec.addresses[0]: 192.0.2.128/25 overlaps 192.0.2.0/24 of pool \"good\" (<stdin>: document 1)\n")
        #expect(try await cli.run("get", "ipaddresspools").stdout == "No resources found\n")

        for (input, expected) in [
            ("kind: [", "invalid YAML at line"),
            ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: eighty}]}", "spec.ports[0].port: expected an integer, got string \"eighty\""),
            ("apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l}\nspec: {ipAddressPools: [nope]}", "unknown pool \"nope\""),
        ] {
            let failed = try await cli.run("apply", "-f", "-", stdin: input)
            #expect(failed.status != 0)
            #expect(failed.stderr.contains(expected), "\(failed.stderr)")
            #expect(failed.stderr.split(separator: "\n").count == 1, "one line: \(failed.stderr)")
        }
        let missing = try await cli.run("apply", "-f", "/nonexistent/file.yaml")
        #expect(missing.status != 0 && missing.stderr.contains("cannot read /nonexistent/file.yaml"))
    }

    @Test func deleteAndReapply() async throws {
        let cli = try CLI()
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns1}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n"
        #expect(try await cli.run("apply", "-f", "-", stdin: service).stdout == "service/s created\n")
        #expect(try await cli.run("apply", "-f", "-", stdin: service).stdout == "service/s unchanged\n")
        #expect(try await cli.run("apply", "-f", "-", stdin: service.replacingOccurrences(of: "80", with: "81")).stdout == "service/s configured\n")
        #expect(try await cli.run("get", "services", "-A").stdout.contains("ns1"))
        #expect(try await cli.run("delete", "service", "s").status != 0, "s lives in ns1, not default")
        let deleted = try await cli.run("delete", "service", "s", "-n", "ns1")
        #expect(deleted.status == 0 && deleted.stdout == "service \"s\" deleted\n")
        #expect(try await cli.run("get", "services", "-n", "ns1").stdout == "No resources found in ns1 namespace.\n")
    }

    /// The file store's own hazard: files in its directories that are not its records.
    @Test func corruptAndForeignFilesAreReportedNotFatal() async throws {
        let cli = try CLI(scheme: "file:")
        try await cli.run("apply", "-f", cli.example("pools.yaml"), "-f", cli.example("services.yaml"))
        try await cli.run("controller", "--once")
        try "not a record".write(toFile: cli.directory + "/notes.txt", atomically: true, encoding: .utf8)
        let servicesDir = try #require(try FileManager.default.contentsOfDirectory(atPath: cli.directory)
            .first { $0.hasPrefix("services") }.map { cli.directory + "/" + $0 })
        FileManager.default.createFile(atPath: servicesDir + "/garbage", contents: Data([0xff, 0x00, 0x13]))
        let services = try await cli.run("get", "services")
        #expect(services.status == 0)
        #expect(services.stdout.contains("192.0.2.11"))
        #expect(services.stderr.contains("garbage"), "\(services.stderr)")
    }

    /// A new directory becomes a database; a directory keeps the kind it holds; an explicit kind never
    /// opens a second, empty store beside the other kind's records, and each refusal says what to type.
    @Test func aStoreDirectoryKeepsItsKindAndANewOneIsADatabase() async throws {
        let cli = try CLI()
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: f}\nspec: {type: LoadBalancer}\n"
        let fresh = cli.directory + "/fresh", files = cli.directory + "/files"
        #expect(try await cli.run("apply", "--store", fresh, "-f", "-", stdin: service).status == 0)
        #expect(FileManager.default.fileExists(atPath: fresh + "/metalvip.db"))
        #expect(!FileManager.default.fileExists(atPath: fresh + "/.meta"))
        #expect(try await cli.run("get", "services", "--store", "sqlite:" + fresh).stdout.contains("f "))

        #expect(try await cli.run("apply", "--store", "file:" + files, "-f", "-", stdin: service).status == 0)
        #expect(FileManager.default.fileExists(atPath: files + "/.meta"))
        #expect(try await cli.run("get", "services", "--store", files).stdout.contains("f "))
        #expect(!FileManager.default.fileExists(atPath: files + "/metalvip.db"))

        let wrongDatabase = try await cli.run("get", "services", "--store", "sqlite:" + files)
        #expect(wrongDatabase.status == 1)
        #expect(wrongDatabase.stderr == "error: cannot open store sqlite:\(files): \(files) holds a file store (.meta), not a database: use --store file:\(files)\n")
        #expect(!FileManager.default.fileExists(atPath: files + "/metalvip.db"))
        let wrongFiles = try await cli.run("get", "services", "--store", "file:" + fresh)
        #expect(wrongFiles.stderr.contains("\(fresh) holds a database (metalvip.db), not a file store: use --store sqlite:\(fresh)"))
        #expect(!FileManager.default.fileExists(atPath: fresh + "/.meta"))

        try FileManager.default.createDirectory(atPath: fresh + "/.meta", withIntermediateDirectories: false)
        let both = try await cli.run("get", "services", "--store", fresh)
        #expect(both.status == 1)
        #expect(both.stderr.contains("holds both a file store (.meta) and a database (metalvip.db)"))
    }

    /// kill -9 the apply and the controller mid-work: every record stays whole, and a restart finishes.
    @Test func killNineMidApplyAndReconcile() async throws {
        let cli = try CLI()
        #expect(try await cli.run("apply", "-f", "-", stdin: """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: big}
            spec: {addresses: [198.51.100.0/24, 203.0.113.0/24, 2001:db8::/64]}
            """).status == 0)
        let count = 400
        let services = (0..<count).map { index in
            "apiVersion: v1\nkind: Service\nmetadata: {name: svc-\(index)}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n"
        }.joined(separator: "---\n")
        for delay in [0.05, 0.3] {
            let (apply, _, _) = try cli.start(["apply", "-f", "-"], stdin: services)
            let (controller, _, _) = try cli.start(["controller", "--lease-duration-ms", "400", "--metrics-address", "127.0.0.1:0"])
            try await Task.sleep(for: .seconds(delay))
            kill(apply.processIdentifier, SIGKILL)
            try await Task.sleep(for: .seconds(delay))
            kill(controller.processIdentifier, SIGKILL)
            await CLI.exit(of: apply)
            await CLI.exit(of: controller)
            // Every record readable: nothing skipped as corrupt.
            let listing = try await cli.run("get", "services", "-o", "json")
            #expect(listing.status == 0)
            #expect(!listing.stderr.contains("skipped"), "\(listing.stderr)")
            #expect((try? JSONSerialization.jsonObject(with: Data(listing.stdout.utf8))) != nil)
        }
        // A restart finishes the work: the apply again, then one reconcile (after the dead leader's lease expires).
        #expect(try await cli.run("apply", "-f", "-", stdin: services).status == 0)
        let once = try await cli.run("controller", "--once")
        #expect(once.status == 0, "\(once.stderr)")
        let table = try await cli.run("get", "services").stdout
        #expect(!table.contains("<pending>"))
        #expect(table.split(separator: "\n").count == count + 1)
        let addresses = table.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true)[2] }
        #expect(Set(addresses).count == count, "no address given twice")
    }

    /// Polls `get services` until the service has an address; nil after `timeout`.
    func address(of name: String, in cli: CLI, within timeout: Duration) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let row = try await cli.run("get", "services").stdout.split(separator: "\n")
                .first { $0.hasPrefix(name + " ") }?.split(separator: " ", omittingEmptySubsequences: true)
            if let ip = row?[2], ip != "<pending>" { return String(ip) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Two controllers: the standby acts only after the leader goes, and at once when it goes by SIGTERM.
    @Test func sigtermHandsTheLeaseToTheStandbyAtOnce() async throws {
        let cli = try CLI()
        let lease = "20000"  // far longer than the handover may take
        #expect(try await cli.run("apply", "-f", "-", stdin: """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: p}
            spec: {addresses: [192.0.2.0/28]}
            """).status == 0)
        let service = { (name: String) in "apiVersion: v1\nkind: Service\nmetadata: {name: \(name)}\nspec: {type: LoadBalancer}\n" }
        let (leader, _, _) = try cli.start(["controller", "--identity", "leader", "--lease-duration-ms", lease, "--metrics-address", "127.0.0.1:0"])
        defer { if leader.isRunning { leader.terminate() } }
        try await cli.run("apply", "-f", "-", stdin: service("first"))
        #expect(try await address(of: "first", in: cli, within: .seconds(10)) == "192.0.2.0")

        let (standby, _, _) = try cli.start(["controller", "--identity", "standby", "--lease-duration-ms", lease, "--metrics-address", "127.0.0.1:0"])
        defer { if standby.isRunning { standby.terminate() } }
        try await Task.sleep(for: .milliseconds(300))
        kill(leader.processIdentifier, SIGTERM)
        await CLI.exit(of: leader)
        #expect(leader.terminationStatus == 0, "graceful exit on SIGTERM")

        let handover = ContinuousClock.now
        try await cli.run("apply", "-f", "-", stdin: service("second"))
        #expect(try await address(of: "second", in: cli, within: .seconds(8)) == "192.0.2.1")
        #expect(ContinuousClock.now - handover < .seconds(8), "the standby took over without waiting out the 20 s lease")
        kill(standby.processIdentifier, SIGTERM)
        await CLI.exit(of: standby)
    }

    @Test func storeFromFlagAndEnvironment() async throws {
        let cli = try CLI()
        let other = cli.store + "-flag"
        defer { try? FileManager.default.removeItem(atPath: other) }
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: f}\nspec: {type: LoadBalancer}\n"
        #expect(try await cli.run("apply", "--store", other, "-f", "-", stdin: service).status == 0)
        #expect(try await cli.run("get", "services", "--store", other).stdout.contains("f "))
        #expect(try await cli.run("get", "services").stdout.contains("No resources"))
    }
}
