import Testing
@testable import VIPManifest
import Yams
import VIPModel

@Suite struct ManifestReaderTests {
    func read(_ text: String, file: String = "test.yaml") throws -> [ManifestEntry] {
        try ManifestReader.read(text, file: file)
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

    let pool = """
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata:
          name: lan
          namespace: metallb-system
        spec:
          addresses:
          - 192.0.2.0/24
          - 2001:db8::10 - 2001:db8::20
          - 198.51.100.7
        """

    /// YAML scalars resolve as Kubernetes' YAML 1.1 parser resolves them (`0443` is octal), and a value a
    /// field cannot hold names its place in the document: list positions and keys, as the field checks do.
    @Test func scalarsResolveAndConversionErrorsNameTheirPlace() throws {
        let entries = try read("""
            apiVersion: v1
            kind: Service
            metadata: {name: web, labels: {a: "80", c: "0x1F"}}
            spec: {type: LoadBalancer, ports: [{port: 80}], extra: [+8080, 0443, 1_000, -0, 0, yes, 0x1F, 1.5, ~, 007]}
            """)
        guard case .object(let object) = try #require(entries.first) else { return }
        #expect(object.document["spec"]?["extra"] == .array([.int(8080), .int(0o443), .int(1000), .int(0), .int(0), .bool(true),
                                                               .int(31), .double(1.5), .null, .int(7)]))
        #expect(object.document["metadata"]?["labels"] == .object(["a": .string("80"), "c": .string("0x1F")]))
        #expect(failure("kind: Service\nspec:\n  ports:\n  - port: 80\n  - port: 99999999999999999999\n")
                == "test.yaml: document 1: spec.ports[1].port: integer 99999999999999999999 is out of range")
        #expect(failure("kind: Service\nspec:\n  ports:\n  - {port: *ref}\n").contains("test.yaml: document 1"))
    }

    @Test func readsAPoolWithEveryAddressForm() throws {
        let entries = try read(pool)
        guard case .object(let object) = try #require(entries.first), case .ipAddressPool(let pool) = object.resource else {
            Issue.record("expected a pool")
            return
        }
        #expect(pool.name == "lan")
        #expect(pool.meta.namespace == "metallb-system")
        #expect(pool.ranges.map(\.count) == [256, 17, 1])
        #expect(pool.autoAssign)
        #expect(!pool.avoidBuggyIPs)
    }

    @Test func skipsKindsItDoesNotHandleAndEmptyDocuments() throws {
        let entries = try read("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            ---
            """)
        #expect(entries.count == 3)
        guard case .skipped(_, let deployment) = entries[0], case .skipped(_, let configMap) = entries[1],
              case .object(let service) = entries[2] else {
            Issue.record("unexpected entries \(entries)")
            return
        }
        #expect(deployment == "deployment.apps/web")
        #expect(configMap == "configmap/settings")
        #expect(service.key == ObjectKey(.service, namespace: "default", name: "web"))
    }

    @Test func serviceFieldsAndAnnotationsUnderBothPrefixes() throws {
        let entries = try read("""
            apiVersion: v1
            kind: Service
            metadata:
              name: dns
              namespace: infra
              annotations:
                metallb.universe.tf/loadBalancerIPs: "192.0.2.53, 2001:db8::53"
                metallb.universe.tf/allow-shared-ip: dns
                metallb.io/address-pool: lan
            spec:
              type: LoadBalancer
              ipFamilyPolicy: RequireDualStack
              ipFamilies: [IPv6, IPv4]
              externalTrafficPolicy: Local
              loadBalancerClass: metalvip
              selector: {app: dns}
              ports:
              - {name: dns, port: 53, protocol: UDP}
              - {name: dns-tcp, port: 53, protocol: TCP, nodePort: 30053}
            """)
        guard case .object(let object) = entries[0], case .service(let service) = object.resource else {
            Issue.record("expected a service")
            return
        }
        #expect(try service.requestedAddresses() == [IPAddress("192.0.2.53")!, IPAddress("2001:db8::53")!])
        #expect(service.sharingKey == "dns")
        #expect(service.addressPool == "lan")
        #expect(service.familyRequirement == FamilyRequirement(families: [.ipv6, .ipv4], requireAll: true))
        #expect(service.externalTrafficPolicy == .local)
        #expect(service.loadBalancerClass == "metalvip")
        #expect(service.portsDisplay == "53/UDP,53:30053/TCP")
    }

    @Test func errorsNameFileDocumentObjectAndField() {
        #expect(failure("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: ok}
            ---
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: bad}
            spec:
              addresses: [192.0.2.0/24, 192.0.2.0/33]
            """, file: "pools.yaml")
            == "pools.yaml: document 2 (IPAddressPool \"bad\"): spec.addresses[1]: invalid CIDR \"192.0.2.0/33\": prefix length 33 is out of range 0-32")
        #expect(failure("""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: bad}
            spec:
              addresses: [192.0.2.20-192.0.2.10]
            """).contains("spec.addresses[0]: invalid range \"192.0.2.20-192.0.2.10\": start 192.0.2.20 is after end 192.0.2.10"))
        #expect(failure("""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: bad}
            spec:
              addresses: [192.0.2.0/24]
              autoAssign: "yes"
            """) == "test.yaml: document 1 (IPAddressPool \"bad\"): spec.autoAssign: expected true or false, got string \"yes\"")
        #expect(failure("""
            apiVersion: v1
            kind: Service
            metadata:
              name: s
              annotations: {metallb.io/loadBalancerIPs: "192.0.2.1,192.0.2.2"}
            spec: {type: LoadBalancer}
            """) == "test.yaml: document 1 (Service \"s\"): metadata.annotations[metallb.io/loadBalancerIPs]: 192.0.2.1 and 192.0.2.2 are both IPv4: at most one address per family")
        #expect(failure("""
            apiVersion: v1
            kind: Service
            metadata: {name: s}
            spec: {type: LoadBalancer, ports: [{port: 99999}]}
            """).hasSuffix("spec.ports[0].port: must be 1-65535, got 99999"))
        #expect(failure("""
            apiVersion: v1
            kind: Service
            metadata: {name: s}
            spec: {type: Loadbalancer}
            """).contains("spec.type: unsupported value \"Loadbalancer\": must be one of"))
    }

    @Test func malformedYAMLNamesTheLine() {
        let message = failure("""
            apiVersion: v1
            kind: Service
            metadata:
              name: [unclosed
            """, file: "svc.yaml")
        #expect(message.hasPrefix("svc.yaml: document 1: invalid YAML at line"))
    }

    @Test func structuralErrors() {
        #expect(failure("- just\n- a list\n") == "test.yaml: document 1: expected a map, got list a list of 2")
        #expect(failure("apiVersion: v1\nmetadata: {name: x}\n") == "test.yaml: document 1: kind: is required")
        #expect(failure("apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n").contains("metadata.name: invalid name \"Bad_Name\""))
        #expect(failure("apiVersion: metallb.io/v1beta1\nkind: Service\nmetadata: {name: x}\n")
                .contains("apiVersion: \"metallb.io/v1beta1\" is not supported for kind Service: use \"v1\""))
        #expect(failure("apiVersion: v1\nkind: Service\nmetadata: {name: x, labels: {app: 1}}\n")
                .contains("metadata.labels[app]: expected a string, got integer 1"))
    }

    /// Whatever bytes arrive, the reader answers with entries or an error, never a crash.
    @Test func garbageNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abc: -[]{}\n\t'\"#&*!|>%@`,?0123456789./\\")
        for _ in 0..<500 {
            let text = String((0..<Int.random(in: 0..<200, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            _ = try? ManifestReader.read(text, file: "fuzz.yaml")
        }
        for text in ["\u{0}", "---\n---\n", "kind: [", ": :", "!!binary x", "*alias", "&a [*a]", String(repeating: "[", count: 5000)] {
            _ = try? ManifestReader.read(text, file: "fuzz.yaml")
        }
    }
}

@Suite struct ConfigValidatorTests {
    func objects(_ text: String, file: String = "batch.yaml") throws -> [ManifestObject] {
        try ManifestReader.read(text, file: file).compactMap {
            if case .object(let object) = $0 { return object }
            return nil
        }
    }

    func poolYAML(_ name: String, _ addresses: String) -> String {
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: \(name)}\nspec: {addresses: [\(addresses)]}\n"
    }

    @Test func overlappingPoolsInOneBatch() throws {
        let batch = try objects(poolYAML("a", "192.0.2.0/24") + "---\n" + poolYAML("b", "192.0.2.128/25"))
        #expect(throws: ManifestError.self) { try ConfigValidator.validate(batch, existingPools: []) }
        do {
            try ConfigValidator.validate(batch, existingPools: [])
        } catch {
            #expect(error.description == "batch.yaml: document 2 (IPAddressPool \"b\"): spec.addresses[0]: 192.0.2.128/25 overlaps 192.0.2.0/24 of pool \"a\" (batch.yaml: document 1)")
        }
    }

    @Test func overlapWithTheStoreButNotWithTheReplacedPool() throws {
        let stored = try IPAddressPool(meta: ObjectMeta(name: "old"), addresses: ["198.51.100.0/24"])
        let overlapping = try objects(poolYAML("new", "198.51.100.10-198.51.100.20"))
        do {
            try ConfigValidator.validate(overlapping, existingPools: [stored])
            Issue.record("overlap with a stored pool accepted")
        } catch {
            #expect(error.description.hasSuffix("overlaps 198.51.100.0/24 of pool \"old\" (the store)"))
        }
        // Re-applying the stored pool itself with new ranges is an update, not an overlap.
        try ConfigValidator.validate(try objects(poolYAML("old", "198.51.100.0/23")), existingPools: [stored])
        // A wide range before two narrow ones still catches an overlap with the second.
        #expect(throws: ManifestError.self) {
            try ConfigValidator.validate(try objects(poolYAML("w", "203.0.113.0/24") + "---\n" + poolYAML("x", "203.0.113.200")),
                                         existingPools: [try IPAddressPool(meta: ObjectMeta(name: "n"), addresses: ["203.0.113.1"])])
        }
    }

    @Test func unknownPoolInAnAdvertisement() throws {
        let batch = try objects(poolYAML("a", "192.0.2.0/24") + """
            ---
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: l2}
            spec: {ipAddressPools: [a, b]}
            """)
        do {
            try ConfigValidator.validate(batch, existingPools: [])
            Issue.record("unknown pool accepted")
        } catch {
            #expect(error.description == "batch.yaml: document 2 (L2Advertisement \"l2\"): spec.ipAddressPools[1]: unknown pool \"b\": no IPAddressPool of that name in this apply or in the store")
        }
    }
}

/// Plain scalars are typed by `ManifestReader`, not by Yams' regular expressions: the two must agree.
@Suite struct ScalarResolutionTests {
    /// The shortcut for words must give what Yams' default resolver gives, for every kind of plain scalar.
    @Test(arguments: ["TCP", "LoadBalancer", "ns1", "s123", "yes", "Yes", "no", "on", "OFF", "true", "False", "null", "NULL",
                      "y", "n", "Nullable", "truely", "~", "", "123", "-7", "+3", "0x1F", "0o17", "0b101", "1_000", "1.5",
                      ".5", "1e3", ".inf", "-.Inf", ".nan", "2001:db8::1", "192.0.2.1", "1:30", "2026-11-28",
                      "2026-11-28T20:13:20Z", "<<", "=", "@x", "_under", "8080/TCP"])
    func implicitTagsAgreeWithTheDefaultResolver(_ scalar: String) {
        #expect(ManifestReader.implicitTag(of: scalar) == Resolver.default.resolveTag(of: Node(scalar)))
    }

    @Test func quotedAndTaggedScalarsKeepTheirTypes() throws {
        let entries = try ManifestReader.read("""
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              ports: [{port: 80}]
              x: {a: "80", b: 80, c: !!str 80, d: 'true', e: true, f: ~, g: web, h: 1.5, i: !!int "7"}
            """, file: "s.yaml")
        guard case .object(let object) = try #require(entries.first) else { Issue.record("no object"); return }
        #expect(object.document["spec"]?["x"] == .object([
            "a": .string("80"), "b": .int(80), "c": .string("80"), "d": .string("true"), "e": .bool(true),
            "f": .null, "g": .string("web"), "h": .double(1.5), "i": .int(7)]))
    }
}
