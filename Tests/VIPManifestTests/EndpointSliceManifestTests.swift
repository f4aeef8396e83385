import Foundation
import Testing
import VIPManifest
import VIPModel

/// EndpointSlice and v1 Endpoints documents, and kubectl's `kind: List`, as `metalvip apply` reads them.
@Suite struct EndpointSliceManifestTests {
    func read(_ text: String, file: String = "test.yaml") throws -> [ManifestEntry] {
        try ManifestReader.read(text, file: file)
    }

    func objects(_ text: String, file: String = "test.yaml") throws -> [ManifestObject] {
        try read(text, file: file).compactMap {
            if case .object(let object) = $0 { return object }
            return nil
        }
    }

    /// The error text for `text`, or a recorded issue when it was accepted.
    func failure(_ text: String, file: String = "test.yaml") -> String {
        do {
            let entries = try read(text, file: file)
            Issue.record("accepted: \(entries)")
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// A slice of service `web` with `body` (addressType, endpoints, ports) under a fixed header.
    func slice(_ body: String, labels: String = "{kubernetes.io/service-name: web}") -> String {
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-abc, labels: \(labels)}\n" + body
    }

    static let export = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/kubectl-export.yaml")

    @Test func readsASliceWithEveryField() throws {
        let read = try objects("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-abc
              namespace: shop
              labels: {kubernetes.io/service-name: web}
            addressType: IPv6
            endpoints:
            - addresses: ["2001:db8::2", "2001:db8::99"]
              nodeName: n1
            - addresses: ["2001:db8::3"]
              conditions: {ready: false, serving: true, terminating: true}
              nodeName: n2
            - addresses: ["2001:db8::4"]
              conditions: {ready: false}
            ports:
            - {name: http, port: 8080}
            - {name: dns, port: 53, protocol: UDP}
            """)
        guard case .endpointSlice(let slice) = try #require(read.first).resource else {
            Issue.record("expected a slice: \(read)")
            return
        }
        #expect(slice.key == ObjectKey(.endpointSlice, namespace: "shop", name: "web-abc"))
        #expect(slice.service == ObjectKey(.service, namespace: "shop", name: "web"))
        #expect(slice.addressType == .ipv6)
        #expect(slice.endpoints == [
            EndpointSlice.Endpoint(address: IPAddress("2001:db8::2")!, ready: true, serving: true, terminating: false, nodeName: "n1"),
            EndpointSlice.Endpoint(address: IPAddress("2001:db8::3")!, ready: false, serving: true, terminating: true, nodeName: "n2"),
            EndpointSlice.Endpoint(address: IPAddress("2001:db8::4")!, ready: false, serving: false, terminating: false, nodeName: nil),
        ])
        #expect(slice.ports == [EndpointSlice.Port(name: "http", port: 8080, protocol: .tcp),
                                EndpointSlice.Port(name: "dns", port: 53, protocol: .udp)])
        #expect(read.first?.label == "EndpointSlice \"web-abc\"")
        #expect(read.first?.key.description == "endpointslice.discovery.k8s.io/web-abc")
    }

    @Test func readsEndpointsWithReadyAndNotReadyAddresses() throws {
        let read = try objects("""
            apiVersion: v1
            kind: Endpoints
            metadata: {name: web}
            subsets:
            - addresses: [{ip: 192.0.2.2, nodeName: n1}, {ip: "2001:db8::2"}]
              notReadyAddresses: [{ip: 192.0.2.3, nodeName: n2}]
              ports: [{name: http, port: 8080}]
            """)
        guard case .endpoints(let endpoints) = try #require(read.first).resource else {
            Issue.record("expected Endpoints: \(read)")
            return
        }
        #expect(endpoints.service == ObjectKey(.service, namespace: "default", name: "web"))
        #expect(endpoints.subsets.first?.ready.map(\.address.description) == ["192.0.2.2", "2001:db8::2"])
        #expect(endpoints.subsets.first?.notReady.map(\.ready) == [false])
        #expect(endpoints.slices.map(\.addressType) == [.ipv4, .ipv6])
        #expect(endpoints.slices.first?.endpoints.map(\.address.description) == ["192.0.2.2", "192.0.2.3"])
    }

    /// Every rule, with the exact message `metalvip apply` prints after `error: `.
    @Test func badSlicesAndEndpointsNameTheField() {
        let prefix = "test.yaml: document 1 (EndpointSlice \"web-abc\"): "
        #expect(failure(slice("addressType: FQDN\nendpoints: [{addresses: [web.example.com]}]\n"))
                == prefix + "addressType: \"FQDN\" is not supported: MetalVIP forwards to IP addresses; use \"IPv4\" or \"IPv6\"")
        #expect(failure(slice("addressType: ipv4\n"))
                == prefix + "addressType: unsupported value \"ipv4\": must be \"IPv4\" or \"IPv6\"")
        #expect(failure(slice("endpoints: [{addresses: [192.0.2.2]}]\n")) == prefix + "addressType: is required")
        #expect(failure(slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.2]}, {addresses: [192.0.2.3, \"2001:db8::3\"]}]\n"))
                == prefix + "endpoints[1].addresses[1]: 2001:db8::3 is IPv6 but addressType is IPv4")
        #expect(failure(slice("addressType: IPv6\nendpoints: [{addresses: [192.0.2.2]}]\n"))
                == prefix + "endpoints[0].addresses[0]: 192.0.2.2 is IPv4 but addressType is IPv6")
        #expect(failure(slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.256]}]\n"))
                == prefix + "endpoints[0].addresses[0]: invalid IP address \"192.0.2.256\"")
        #expect(failure(slice("addressType: IPv4\nendpoints: [{addresses: []}]\n"))
                == prefix + "endpoints[0].addresses: must list at least one address")
        #expect(failure(slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.2], conditions: {ready: \"yes\"}}]\n"))
                == prefix + "endpoints[0].conditions.ready: expected true or false, got string \"yes\"")
        #expect(failure(slice("addressType: IPv4\nports: [{name: http, port: 70000}]\n"))
                == prefix + "ports[0].port: must be 1-65535, got 70000")
        #expect(failure(slice("addressType: IPv4\nports: [{name: http, port: 0}]\n"))
                == prefix + "ports[0].port: must be 1-65535, got 0")
        #expect(failure(slice("addressType: IPv4\nports: [{name: http}]\n")) == prefix + "ports[0].port: is required")
        #expect(failure(slice("addressType: IPv4\nports: [{name: http, port: 80}, {name: http, port: 81}]\n"))
                == prefix + "ports[1].name: duplicate port name \"http\"")
        #expect(failure(slice("addressType: IPv4\nports: [{port: 80}, {port: 81}]\n"))
                == prefix + "ports[1].name: two ports without a name: name all but one")
        #expect(failure(slice("addressType: IPv4\nports: [{port: 80, protocol: ICMP}]\n"))
                .hasPrefix(prefix + "ports[0].protocol: unsupported value \"ICMP\": must be one of"))
        #expect(failure(slice("addressType: IPv4\n", labels: "{app: web}"))
                == prefix + "metadata.labels[kubernetes.io/service-name]: is required: it names the Service this slice belongs to")
        #expect(failure(slice("addressType: IPv4\n", labels: "{kubernetes.io/service-name: Web_1}"))
                .hasPrefix(prefix + "metadata.labels[kubernetes.io/service-name]: invalid service name \"Web_1\": "))

        let endpoints = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
        #expect(failure(endpoints + "subsets: [{addresses: [{ip: 192.0.2.2}, {ip: 10.0.0.300}]}]\n")
                == "test.yaml: document 1 (Endpoints \"web\"): subsets[0].addresses[1].ip: invalid IP address \"10.0.0.300\"")
        #expect(failure(endpoints + "subsets: [{notReadyAddresses: [{nodeName: n1}]}]\n")
                == "test.yaml: document 1 (Endpoints \"web\"): subsets[0].notReadyAddresses[0].ip: is required")
        #expect(failure(endpoints + "subsets: [{addresses: [{ip: 192.0.2.2}], ports: [{port: 65536}]}]\n")
                == "test.yaml: document 1 (Endpoints \"web\"): subsets[0].ports[0].port: must be 1-65535, got 65536")
    }

    /// A version of a group we handle is a mistake and says so; a same-named kind from a foreign group is skipped.
    @Test func apiVersionsAndForeignGroups() throws {
        #expect(failure(slice("addressType: IPv4\n").replacingOccurrences(of: "discovery.k8s.io/v1", with: "discovery.k8s.io/v1beta1"))
                == "test.yaml: document 1 (EndpointSlice \"web-abc\"): apiVersion: \"discovery.k8s.io/v1beta1\" is not supported for kind EndpointSlice: use \"discovery.k8s.io/v1\"")
        #expect(failure(slice("addressType: IPv4\n").replacingOccurrences(of: "discovery.k8s.io/v1", with: "v1"))
                == "test.yaml: document 1 (EndpointSlice \"web-abc\"): apiVersion: \"v1\" is not supported for kind EndpointSlice: use \"discovery.k8s.io/v1\"")
        #expect(failure("apiVersion: discovery.k8s.io/v1\nkind: Endpoints\nmetadata: {name: web}\n")
                == "test.yaml: document 1 (Endpoints \"web\"): apiVersion: \"discovery.k8s.io/v1\" is not supported for kind Endpoints: use \"v1\"")
        let entries = try read("""
            apiVersion: example.com/v1
            kind: Endpoints
            metadata: {name: web}
            ---
            apiVersion: acme.io/v2
            kind: EndpointSlice
            metadata: {name: web-abc}
            ---
            apiVersion: apps.example.org/v1
            kind: Service
            metadata: {name: web}
            """)
        #expect(entries == [
            .skipped(origin: DocumentOrigin(file: "test.yaml", index: 1), resource: "endpoints.example.com/web"),
            .skipped(origin: DocumentOrigin(file: "test.yaml", index: 2), resource: "endpointslice.acme.io/web-abc"),
            .skipped(origin: DocumentOrigin(file: "test.yaml", index: 3), resource: "service.apps.example.org/web"),
        ])
        // MetalLB's kinds are never foreign: a misspelt group must not drop a pool silently.
        #expect(failure("apiVersion: metalb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n")
                .hasSuffix("apiVersion: \"metalb.io/v1beta1\" is not supported for kind IPAddressPool: use \"metallb.io/v1beta1\""))
    }

    @Test func aListIsReadItemByItem() throws {
        let entries = try read("""
            apiVersion: v1
            kind: Service
            metadata: {name: before}
            ---
            apiVersion: v1
            kind: List
            metadata: {resourceVersion: ""}
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: web}
              spec: {type: LoadBalancer, ports: [{name: http, port: 80}]}
            - apiVersion: apps/v1
              kind: Deployment
              metadata: {name: web}
            - apiVersion: discovery.k8s.io/v1
              kind: EndpointSlice
              metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
              addressType: IPv4
              endpoints: [{addresses: [192.0.2.2]}]
            """, file: "export.yaml")
        #expect(entries.count == 4)
        guard entries.count == 4, case .object(let before) = entries[0], case .object(let web) = entries[1],
              case .skipped(let skippedOrigin, let skipped) = entries[2], case .object(let slice) = entries[3] else {
            Issue.record("unexpected entries \(entries)")
            return
        }
        #expect(before.origin == DocumentOrigin(file: "export.yaml", index: 1))
        #expect(web.origin == DocumentOrigin(file: "export.yaml", index: 2, item: 0))
        #expect(web.key == ObjectKey(.service, namespace: "default", name: "web"))
        #expect(skippedOrigin == DocumentOrigin(file: "export.yaml", index: 2, item: 1))
        #expect(skipped == "deployment.apps/web")
        #expect(slice.origin.description == "export.yaml: document 2, items[2]")
        #expect(slice.key == ObjectKey(.endpointSlice, namespace: "default", name: "web-abc"))
        #expect(try read("apiVersion: v1\nkind: List\nitems: []\n").isEmpty)
        #expect(try read("apiVersion: v1\nkind: List\n").isEmpty)
    }

    @Test func errorsInAListNameTheItem() throws {
        let list = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: web}
            - ITEM
            """
        func item(_ yaml: String) -> String {
            failure(list.replacingOccurrences(of: "- ITEM", with: "- " + yaml.replacingOccurrences(of: "\n", with: "\n  ")), file: "export.yaml")
        }
        #expect(item(slice("addressType: IPv4\nendpoints: [{addresses: [\"2001:db8::2\"]}]"))
                == "export.yaml: document 1 (items[1], EndpointSlice \"web-abc\"): endpoints[0].addresses[0]: 2001:db8::2 is IPv6 but addressType is IPv4")
        #expect(item("apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: [{addresses: [{ip: nope}]}]")
                == "export.yaml: document 1 (items[1], Endpoints \"web\"): subsets[0].addresses[0].ip: invalid IP address \"nope\"")
        #expect(item("just a string") == "export.yaml: document 1 (items[1]): expected a map, got string \"just a string\"")
        #expect(item("{apiVersion: v1, metadata: {name: x}}") == "export.yaml: document 1 (items[1]): kind: is required")
        #expect(item("{apiVersion: v1, kind: List, items: []}") == "export.yaml: document 1 (items[1]): kind: a List inside a List is not supported")
        #expect(failure("apiVersion: v1\nkind: List\nitems: {a: b}\n", file: "export.yaml")
                == "export.yaml: document 1: items: expected a list, got map a map")

        // A duplicate across items names both places.
        let duplicate = try objects("apiVersion: v1\nkind: List\nitems:\n- " + slice("addressType: IPv4").replacingOccurrences(of: "\n", with: "\n  ")
                                    + "\n- " + slice("addressType: IPv4").replacingOccurrences(of: "\n", with: "\n  "), file: "export.yaml")
        #expect(throws: ManifestError.self) { try ConfigValidator.validate(duplicate, existingPools: []) }
        do {
            try ConfigValidator.validate(duplicate, existingPools: [])
        } catch {
            #expect(error.description == "export.yaml: document 1 (items[1], EndpointSlice \"web-abc\"): metadata.name: endpointslice.discovery.k8s.io/web-abc is also defined in export.yaml: document 1, items[0]")
        }
    }

    /// A realistic `kubectl get -o yaml` export (status, uid, resourceVersion, managedFields, ownerReferences,
    /// clusterIP, nodePort, targetRef) applies as it is.
    @Test func aKubectlExportReadsUnchanged() throws {
        let text = try String(contentsOf: Self.export, encoding: .utf8)
        let entries = try read(text, file: "export.yaml")
        let read = entries.compactMap { entry -> ManifestObject? in
            if case .object(let object) = entry { return object }
            return nil
        }
        #expect(read.map(\.key.description) == ["service/web", "endpointslice.discovery.k8s.io/web-7xq2v", "endpoints/web"])
        #expect(entries.last == .skipped(origin: DocumentOrigin(file: "export.yaml", index: 1, item: 3), resource: "pod/web-5d9c7b6f4-2xkqp"))
        try ConfigValidator.validate(read, existingPools: [])
        guard read.count == 3, case .service(let service) = read[0].resource, case .endpointSlice(let slice) = read[1].resource,
              case .endpoints(let endpoints) = read[2].resource else {
            Issue.record("unexpected objects \(read)")
            return
        }
        #expect(service.type == .loadBalancer)
        #expect(service.ports.map(\.port) == [80])
        #expect(slice.service == service.key)
        #expect(slice.endpoints.map(\.ready) == [true, true, false])
        #expect(slice.endpoints.map(\.nodeName) == ["n1", "n2", "n3"])
        #expect(slice.ports == [EndpointSlice.Port(name: "http", port: 8080)])
        #expect(endpoints.service == service.key)
        #expect(endpoints.slices.first?.endpoints.map(\.ready) == [true, true, false])
        // Kept whole for the store, status and all.
        #expect(read[0].document["status"]?["loadBalancer"] != nil)
        #expect(read[1].document["metadata"]?["ownerReferences"] != nil)
        #expect(read.allSatisfy { $0.warnings.isEmpty })
    }
}
