import Foundation
import Testing
import VIPLabHarness

/// Every subcommand against etcd (a real member on loopback, started by the test), as a user runs them.
@Suite(.serialized) struct EtcdCLITests {
    @Test func everyCommandWorksOnEtcd() async throws {
        let etcd = try await EtcdCluster()
        let cli = try CLI(store: etcd.url)
        let applied = try await cli.run("apply", "-f", cli.example("pools.yaml"), "-f", cli.example("services.yaml"))
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("service/web created"))
        #expect(try await cli.run("get", "services").stdout.contains("<pending>"))

        let once = try await cli.run("controller", "--once")
        #expect(once.status == 0, "\(once.stderr)")
        let services = try await cli.run("get", "services")
        let web = services.stdout.split(separator: "\n").first { $0.hasPrefix("web ") }.map(String.init) ?? ""
        #expect(web.split(separator: " ", omittingEmptySubsequences: true).prefix(4) == ["web", "LoadBalancer", "192.0.2.11", "80/TCP"])
        #expect(try await cli.run("describe", "service", "dual").stdout.contains("192.0.2.10,2001:db8::10"))

        // The records are etcd keys under the default prefix, as the README documents.
        let keys = try await etcd.etcdctl(["get", "--prefix", "/metalvip/", "--keys-only"])
        #expect(keys.contains("/metalvip/services/default/web"))
        #expect(keys.contains("/metalvip/assignments/default/web"))
        #expect(keys.contains("/metalvip/ipaddresspools/metallb-system/lan"))

        let deleted = try await cli.run("delete", "service", "web")
        #expect(deleted.status == 0 && deleted.stdout == "service \"web\" deleted\n")
        #expect(!(try await cli.run("get", "services").stdout.contains("web ")))

        // --etcd-prefix keeps a second installation apart in the same etcd.
        let other = try await cli.run("get", "services", "--etcd-prefix", "/other/")
        #expect(other.stdout == "No resources found in default namespace.\n", "\(other.stdout)\(other.stderr)")
    }

    /// More objects than etcd takes in one transaction (128 by default): apply and the controller batch.
    @Test func largeAppliesAndReconcilesStayWithinEtcdsTransactionLimit() async throws {
        let etcd = try await EtcdCluster()
        let cli = try CLI(store: etcd.url)
        var yaml = """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: big}
            spec: {addresses: [198.51.100.0/24, 203.0.113.0/24]}
            """
        for index in 0..<300 {
            yaml += "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s\(index)}\nspec: {type: LoadBalancer, ports: [{port: 80}]}"
        }
        let applied = try await cli.run("apply", "-f", "-", stdin: yaml)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.split(separator: "\n").count == 301)
        let once = try await cli.run("controller", "--once")
        #expect(once.status == 0, "\(once.stderr)")
        let services = try await cli.run("get", "services", "-o", "json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(services.stdout.utf8)) as? [String: Any])
        let addresses = (list["items"] as? [[String: Any]] ?? []).compactMap { item in
            ((((item["status"] as? [String: Any])?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]])?.first)?["ip"] as? String
        }
        #expect(addresses.count == 300 && Set(addresses).count == 300, "each service its own address")
        let deleted = try await cli.run("delete", "-f", "-", stdin: yaml)
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(try await cli.run("get", "services").stdout.hasPrefix("No resources found"))
    }

    @Test func etcdProblemsSayExactlyWhat() async throws {
        let cli = try CLI(store: "etcd://127.0.0.1:0")
        let badPort = try await cli.run("get", "services")
        #expect(badPort.status != 0)
        #expect(badPort.stderr == "error: cannot use store etcd://127.0.0.1:0: etcd://127.0.0.1:0: endpoint \"127.0.0.1:0\": port must be 1-65535\n")

        // A port nobody listens on: one line naming the member, and quickly.
        let port = try EtcdCluster.freePorts(1)[0]
        let started = ContinuousClock.now
        let down = try await cli.run("get", "services", "--store", "etcd://127.0.0.1:\(port)")
        #expect(down.status != 0)
        #expect(down.stderr.hasPrefix("error: ") && down.stderr.contains("127.0.0.1:\(port)"), "\(down.stderr)")
        #expect(down.stderr.split(separator: "\n").count == 1, "\(down.stderr)")
        #expect(ContinuousClock.now - started < .seconds(10))

        let noPassword = try await cli.run("get", "services", "--store", "etcd://127.0.0.1:\(port)", "--etcd-user", "root")
        #expect(noPassword.stderr.contains("--etcd-user root needs a password"), "\(noPassword.stderr)")
        let halfTLS = try await cli.run("get", "services", "--store", "etcd://127.0.0.1:\(port)", "--etcd-cert", "/nonexistent.pem")
        #expect(halfTLS.stderr.contains("etcd TLS"), "\(halfTLS.stderr)")
    }
}
