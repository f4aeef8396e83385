import Foundation
import Testing

/// EndpointSlices, v1 Endpoints and kubectl Lists through the real binary: apply, get, describe, delete.
@Suite(.serialized) struct EndpointSliceCLITests {
    static let export = CLI.repository.appendingPathComponent("Tests/Fixtures/kubectl-export.yaml").path

    /// A table's rows as cells (cells are padded apart by at least two spaces; `+ 3 more...` keeps its single ones).
    func rows(_ table: String) -> [[String]] {
        table.split(separator: "\n").map { line in
            line.replacingOccurrences(of: " {2,}", with: "\t", options: .regularExpression).split(separator: "\t").map(String.init)
        }
    }

    /// describe's value for `field` (the first line with it, or all of them).
    func described(_ field: String, in text: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix(field + ":") }.map {
            $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func examplesApplyAndShowTheirBackends() async throws {
        let cli = try CLI()
        let applied = try await cli.run("apply", "-f", cli.example("pools.yaml"), "-f", cli.example("services.yaml"),
                                        "-f", cli.example("endpointslices.yaml"))
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("endpointslice.discovery.k8s.io/web-x7k2p created"))
        #expect(try await cli.run("controller", "--once").status == 0)

        let table = try await cli.run("get", "endpointslices")
        #expect(table.status == 0, "\(table.stderr)")
        #expect(rows(table.stdout).first == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"])
        let byName = Dictionary(rows(table.stdout).dropFirst().map { ($0[0], Array($0.dropFirst().dropLast())) }) { first, _ in first }
        #expect(byName["web-x7k2p"] == ["IPv4", "8080", "192.0.2.2,192.0.2.3,192.0.2.4"])
        #expect(byName["dual-h5n8z"] == ["IPv6", "8080", "2001:db8::2,2001:db8::3,2001:db8::4"])
        #expect(byName["api-t4w9c"] == nil, "api lives in team-a")
        #expect(byName.count == 5)

        let all = rows(try await cli.run("get", "endpointslices", "-A").stdout)
        #expect(all.first == ["NAMESPACE", "NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"])
        #expect(all.contains { $0.prefix(3) == ["team-a", "api-t4w9c", "IPv4"] })
        #expect(rows(try await cli.run("get", "endpointslice", "-n", "team-a").stdout).map { $0[0] } == ["NAME", "api-t4w9c"])
        #expect(rows(try await cli.run("get", "endpointslices", "web-x7k2p", "dns-8c5vw").stdout).map { $0[0] } == ["NAME", "dns-8c5vw", "web-x7k2p"])
        let missing = try await cli.run("get", "endpointslices", "nope")
        #expect(missing.status != 0 && missing.stderr == "error: endpointslices \"nope\" not found in namespace \"default\"\n", "\(missing.stderr)")

        let json = try await cli.run("get", "endpointslices", "-n", "team-a", "-o", "json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(list["kind"] as? String == "List")
        let item = try #require((list["items"] as? [[String: Any]])?.first)
        #expect(item["addressType"] as? String == "IPv4")
        #expect((item["metadata"] as? [String: Any])?["namespace"] as? String == "team-a")
        let yaml = try await cli.run("get", "endpointslices", "-o", "yaml")
        #expect(yaml.stdout.contains("kubernetes.io/service-name: web-tls"))

        let web = try await cli.run("describe", "service", "web")
        #expect(described("Endpoints", in: web.stdout) == ["192.0.2.2:8080,192.0.2.3:8080,192.0.2.4:8080"], "\(web.stdout)")
        // Two slices (one per family) on one unnamed port: six backends, three shown (slices in name order, as kubectl).
        let dual = try await cli.run("describe", "service", "dual")
        #expect(described("Endpoints", in: dual.stdout) == ["[2001:db8::2]:8080,[2001:db8::3]:8080,[2001:db8::4]:8080 + 3 more..."],
                "\(dual.stdout)")
        let clusterIP = try await cli.run("describe", "service", "internal")
        #expect(described("Endpoints", in: clusterIP.stdout) == ["<none>"], "\(clusterIP.stdout)")
        #expect(try await cli.run("get", "endpoints").stdout == "No resources found in default namespace.\n", "no v1 Endpoints were applied")
    }

    @Test func aKubectlExportAppliesUnchangedAndDeletes() async throws {
        let cli = try CLI()
        let applied = try await cli.run("apply", "-f", Self.export)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stderr.isEmpty, "\(applied.stderr)")
        #expect(applied.stdout == """
            service/web created
            endpointslice.discovery.k8s.io/web-7xq2v created
            endpoints/web created
            skipped pod/web-5d9c7b6f4-2xkqp (not handled)

            """)
        let again = try await cli.run("apply", "-f", Self.export)
        #expect(again.stdout.split(separator: "\n").prefix(3) == ["service/web unchanged", "endpointslice.discovery.k8s.io/web-7xq2v unchanged",
                                                                  "endpoints/web unchanged"])

        // The not-ready endpoint is listed by get endpointslices, and left out where only ready ones count.
        let slices = rows(try await cli.run("get", "endpointslices").stdout)
        #expect(slices.dropFirst().first?.dropLast() == ["web-7xq2v", "IPv4", "8080", "192.0.2.2,192.0.2.3,192.0.2.4"])
        let endpoints = rows(try await cli.run("get", "endpoints", "-A").stdout)
        #expect(endpoints.first == ["NAMESPACE", "NAME", "ENDPOINTS", "AGE"])
        #expect(endpoints.dropFirst().first?.dropLast() == ["default", "web", "192.0.2.2:8080,192.0.2.3:8080"])
        #expect(described("Endpoints", in: try await cli.run("describe", "service", "web").stdout) == ["192.0.2.2:8080,192.0.2.3:8080"])

        // Without its slice, the service's backends come from its v1 Endpoints.
        let deleted = try await cli.run("delete", "endpointslice", "web-7xq2v")
        #expect(deleted.status == 0 && deleted.stdout == "endpointslice.discovery.k8s.io \"web-7xq2v\" deleted\n", "\(deleted.stderr)")
        #expect(try await cli.run("get", "endpointslices").stdout == "No resources found in default namespace.\n")
        #expect(described("Endpoints", in: try await cli.run("describe", "service", "web").stdout) == ["192.0.2.2:8080,192.0.2.3:8080"])

        // delete -f takes the List apart too; the slice already gone is reported, the rest deleted.
        let rest = try await cli.run("delete", "-f", Self.export)
        #expect(rest.status != 0)
        #expect(rest.stdout == "service \"web\" deleted\nendpoints \"web\" deleted\n")
        #expect(rest.stderr == "error: endpointslice.discovery.k8s.io \"web-7xq2v\" in namespace \"default\" not found\n")
        #expect(try await cli.run("get", "endpoints").stdout == "No resources found in default namespace.\n")
        #expect(try await cli.run("get", "services").stdout == "No resources found in default namespace.\n")
    }

    @Test func badBackendsFailWithOneLineAndWriteNothing() async throws {
        let cli = try CLI()
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, ports: [{name: http, port: 80}]}"
        let slice = { (body: String) in
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}\n" + body
        }
        let indented = { (text: String) in "- " + text.replacingOccurrences(of: "\n", with: "\n  ") }
        let list = "apiVersion: v1\nkind: List\nitems:\n" + indented(service) + "\n"
            + indented(slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.2]}, {addresses: [\"2001:db8::3\"]}]"))
        for (input, expected) in [
            (list, "<stdin>: document 1 (items[1], EndpointSlice \"web-abc\"): endpoints[1].addresses[0]: 2001:db8::3 is IPv6 but addressType is IPv4"),
            (service + "\n---\n" + slice("addressType: FQDN"),
             "<stdin>: document 2 (EndpointSlice \"web-abc\"): addressType: \"FQDN\" is not supported: MetalVIP forwards to IP addresses; use \"IPv4\" or \"IPv6\""),
            (service + "\n---\n" + slice("addressType: IPv4\nports: [{name: http, port: 80}, {name: http, port: 8080}]"),
             "<stdin>: document 2 (EndpointSlice \"web-abc\"): ports[1].name: duplicate port name \"http\""),
            (service + "\n---\n" + slice("addressType: IPv4\nports: [{port: 100000}]"),
             "<stdin>: document 2 (EndpointSlice \"web-abc\"): ports[0].port: must be 1-65535, got 100000"),
            (slice("addressType: IPv4").replacingOccurrences(of: "labels: {kubernetes.io/service-name: web}", with: "labels: {app: web}"),
             "<stdin>: document 1 (EndpointSlice \"web-abc\"): metadata.labels[kubernetes.io/service-name]: is required: it names the Service this slice belongs to"),
            (slice("addressType: IPv4").replacingOccurrences(of: "discovery.k8s.io/v1\n", with: "discovery.k8s.io/v1beta1\n"),
             "<stdin>: document 1 (EndpointSlice \"web-abc\"): apiVersion: \"discovery.k8s.io/v1beta1\" is not supported for kind EndpointSlice: use \"discovery.k8s.io/v1\""),
            (service + "\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: [{addresses: [{ip: 192.0.2.999}]}]",
             "<stdin>: document 2 (Endpoints \"web\"): subsets[0].addresses[0].ip: invalid IP address \"192.0.2.999\""),
        ] {
            let failed = try await cli.run("apply", "-f", "-", stdin: input)
            #expect(failed.status != 0)
            #expect(failed.stdout.isEmpty)
            #expect(failed.stderr == "error: \(expected)\n")
        }
        #expect(try await cli.run("get", "services", "-A").stdout == "No resources found\n")
        #expect(try await cli.run("get", "endpointslices", "-A").stdout == "No resources found\n")
        #expect(try await cli.run("get", "endpoints", "-A").stdout == "No resources found\n")
    }
}
