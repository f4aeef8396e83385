import Foundation
import Testing
import VIPLabHarness

/// The lab's HTTP backends (`metalvip-lab serve`) and the client's real `curl`, on their own: what the data-path
/// tests and the demo build on.
@Suite(.serialized) struct LANBackendTests {
    @Test func aBackendAnswersTheClientOverBothFamilies() async throws {
        let lab = try await LANLab(nodes: 1)
        try await lab.startBackend(node: 1)

        for url in ["http://192.0.2.2:8080/", "http://[2001:db8::2]:8080/", "http://192.0.2.2:8080/any/path?x=1"] {
            let response = try await lab.curl(url)
            #expect(response.exitCode == 0 && response.status == 200, "\(url): \(response)")
            #expect(response.body == "n1\n", "\(url)")
            #expect(response.time < .seconds(2))
        }
        // The backend sees the client's own address: what `externalTrafficPolicy: Local` must keep.
        #expect(try await lab.curl("http://192.0.2.2:8080/whoami").body == "n1 192.0.2.1\n")
        #expect(try await lab.curl("http://[2001:db8::2]:8080/whoami").body == "n1 2001:db8::1\n")
        let health = try await lab.curl("http://192.0.2.2:8080/health")
        #expect(health.status == 200 && health.body == "ok\n")
        #expect(try await lab.curl("http://192.0.2.2:8080/", arguments: ["-X", "POST"]).status == 405)

        // Connection: close is honoured (curl would report a protocol error otherwise), and many clients at once
        // are all answered.
        let closing = try await lab.curl("http://192.0.2.2:8080/", arguments: ["-H", "Connection: close", "--include"])
        #expect(closing.status == 200 && closing.body.lowercased().contains("connection: close"), "\(closing.body)")
        let answers = try await withThrowingTaskGroup(of: CurlResponse.self) { group in
            for _ in 0..<12 { group.addTask { try await lab.curl("http://192.0.2.2:8080/") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 12 && answers.allSatisfy { $0.status == 200 && $0.body == "n1\n" })

        // Stopped, the port refuses at once (curl exit 7); started again, it answers.
        try await lab.stopBackend(node: 1)
        let refused = try await lab.curl("http://192.0.2.2:8080/")
        #expect(refused.status == 0 && refused.exitCode == 7, "\(refused)")
        try await lab.startBackend(node: 1)
        #expect(try await lab.curl("http://[2001:db8::2]:8080/").body == "n1\n")
    }

    @Test func aBackendExitsByItselfAndRefusesBadAddresses() async throws {
        let lab = try await LANLab(nodes: 1)
        try await lab.startBackend(node: 1, port: 8081, duration: .milliseconds(400))
        let process = try #require(lab.process(LANLab.backendName(node: 1, port: 8081)))
        for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!process.isRunning, "serve should have exited after --duration-ms")
        #expect(!process.isRunning && process.terminationStatus == 0)

        for listen in ["192.0.2.2", "2001:db8::2:8080", "[192.0.2.2]:8080", "192.0.2.2:70000", "[2001:db8::2]8080"] {
            let result = try await LANLab.shell([lab.lab, "serve", "--name", "n1", "--listen", listen])
            #expect(result.status != 0)
            #expect(result.output.contains("invalid --listen \"\(listen)\": expected ADDR:PORT, IPv6 as [ADDR]:PORT"), "\(result.output)")
        }
    }
}
