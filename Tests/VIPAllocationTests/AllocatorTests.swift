import Testing
import VIPAllocation
import VIPModel

/// The MetalLB allocation policy, scenario by scenario (the same ground as MetalLB's allocator tests).
@Suite struct AllocatorTests {
    func pool(_ name: String, _ addresses: [String], autoAssign: Bool = true, avoidBuggyIPs: Bool = false,
              allocation: ServiceAllocation? = nil, labels: [String: String] = [:]) throws -> IPAddressPool {
        try IPAddressPool(meta: ObjectMeta(name: name, namespace: "metallb-system", labels: labels), addresses: addresses,
                          autoAssign: autoAssign, avoidBuggyIPs: avoidBuggyIPs, serviceAllocation: allocation)
    }

    func request(_ owner: String, namespace: String = "default", labels: [String: String] = [:],
                 nsLabels: [String: String] = [:], families: [IPFamily] = [.ipv4], requireAll: Bool = true,
                 requested: [String] = [], pool: String? = nil, key: String = "", ports: [Int] = [80],
                 proto: String = "TCP", backend: String = "") -> AllocationRequest {
        AllocationRequest(owner: "\(namespace)/\(owner)", namespace: namespace, namespaceLabels: nsLabels, serviceLabels: labels,
                          families: FamilyRequirement(families: families, requireAll: requireAll),
                          requested: requested.map { IPAddress($0)! }, pool: pool,
                          sharing: SharingProfile(key: key, ports: Set(ports.map { ServicePortKey(port: $0, protocol: proto) }),
                                                  backendKey: backend))
    }

    func ips(_ texts: String...) -> [IPAddress] { texts.map { IPAddress($0)! } }

    @Test func lowestFreeAddressInNameOrderIsDeterministic() throws {
        var allocator = Allocator(pools: [try pool("b", ["192.0.2.100-192.0.2.101"]), try pool("a", ["192.0.2.1-192.0.2.2"])])
        #expect(try allocator.allocate(request("s1")).get() == ips("192.0.2.1"))
        #expect(try allocator.allocate(request("s2")).get() == ips("192.0.2.2"))
        #expect(try allocator.allocate(request("s3")).get() == ips("192.0.2.100"))
    }

    @Test func reallocatingTheSameServiceIsIdempotent() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28"])])
        let first = try allocator.allocate(request("s1")).get()
        _ = try allocator.allocate(request("s2")).get()
        #expect(try allocator.allocate(request("s1")).get() == first)
        #expect(allocator.keep(first, for: request("s1")) == nil)
    }

    @Test func aRequestedAddressIsNeverStolen() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28"])])
        #expect(try allocator.allocate(request("s1", requested: ["192.0.2.5"])).get() == ips("192.0.2.5"))
        let failure = allocator.allocate(request("s2", requested: ["192.0.2.5"]))
        guard case .failure(.refused(.inUse(_, let by, _))) = failure else {
            Issue.record("expected inUse, got \(failure)")
            return
        }
        #expect(by == ["default/s1"])
        #expect(allocator.space.owners(of: IPAddress("192.0.2.5")!) == ["default/s1"])
    }

    @Test func buggyAddressesAreSkippedAndRefused() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.254-192.0.3.1"], avoidBuggyIPs: true)])
        #expect(try allocator.allocate(request("s1")).get() == ips("192.0.2.254"))
        #expect(try allocator.allocate(request("s2")).get() == ips("192.0.3.1"))
        guard case .failure(.noAddress) = allocator.allocate(request("s3")) else {
            Issue.record("pool should be exhausted: .255 and .0 are not usable")
            return
        }
        guard case .failure(.refused(.excluded)) = allocator.allocate(request("s4", requested: ["192.0.2.255"])) else {
            Issue.record("a requested .255 must be refused")
            return
        }
    }

    @Test func sharingWithTheSameKeyAndDistinctPorts() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28"])])
        let first = try allocator.allocate(request("web", key: "k", ports: [80])).get()
        #expect(try allocator.allocate(request("web-tls", key: "k", ports: [443])).get() == first)
        #expect(try allocator.allocate(request("dns", key: "k", ports: [53], proto: "UDP")).get() == first)
        // Same port number on another protocol is no clash.
        #expect(try allocator.allocate(request("dns-tcp", key: "k", ports: [53], proto: "TCP")).get() == first)
        #expect(allocator.space.owners(of: first[0]).count == 4)
    }

    @Test func sharingRefusedOnPortClashKeyOrSelector() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28"])])
        let shared = try allocator.allocate(request("web", key: "k", ports: [80], backend: "local:app=web")).get()
        for (name, candidate) in [
            ("port clash", request("clash", requested: ["192.0.2.0"], key: "k", ports: [80], backend: "local:app=web")),
            ("other key", request("other", requested: ["192.0.2.0"], key: "x", ports: [81], backend: "local:app=web")),
            ("no key", request("nokey", requested: ["192.0.2.0"], key: "", ports: [82], backend: "local:app=web")),
            ("other selector under Local", request("sel", requested: ["192.0.2.0"], key: "k", ports: [83], backend: "local:app=db")),
            ("Cluster next to Local", request("cluster", requested: ["192.0.2.0"], key: "k", ports: [84], backend: "")),
        ] {
            guard case .failure(.refused(.inUse)) = allocator.allocate(candidate) else {
                Issue.record("\(name): sharing should be refused")
                continue
            }
        }
        // Without a requested address, the refused ones simply get another address.
        #expect(try allocator.allocate(request("clash2", key: "k", ports: [80], backend: "local:app=web")).get() != shared)
    }

    @Test func changingPortsOrKeyInPlaceMovesOnlyTheChangedService() throws {
        let pools = [try pool("a", ["192.0.2.0/28"])]
        var before = Allocator(pools: pools)
        let shared = try before.allocate(request("a", key: "k", ports: [80])).get()
        #expect(try before.allocate(request("b", key: "k", ports: [443])).get() == shared)

        // A reconcile after b changed its port to 80: a keeps the address, b no longer fits.
        var after = Allocator(pools: pools)
        #expect(after.keep(shared, for: request("a", key: "k", ports: [80])) == nil)
        #expect(after.keep(shared, for: request("b", key: "k", ports: [80])) != nil)
        #expect(try after.allocate(request("b", key: "k", ports: [80])).get() == ips("192.0.2.1"))

        // Same with the key changed.
        var rekeyed = Allocator(pools: pools)
        #expect(rekeyed.keep(shared, for: request("a", key: "k", ports: [80])) == nil)
        #expect(rekeyed.keep(shared, for: request("b", key: "other", ports: [443])) != nil)
    }

    @Test func ipv6AndDualStack() throws {
        var allocator = Allocator(pools: [try pool("dual", ["192.0.2.0/30", "2001:db8::/126"]),
                                          try pool("v6", ["2001:db8:1::/64"])])
        #expect(try allocator.allocate(request("six", families: [.ipv6])).get() == ips("2001:db8::"))
        #expect(try allocator.allocate(request("both", families: [.ipv4, .ipv6])).get() == ips("192.0.2.0", "2001:db8::1"))
        #expect(try allocator.allocate(request("six-req", families: [.ipv6], requested: ["2001:db8:1::abcd"])).get()
                == ips("2001:db8:1::abcd"))
        // The v6-only pool cannot serve RequireDualStack; the dual pool runs out of IPv6 after two more.
        _ = try allocator.allocate(request("both2", families: [.ipv4, .ipv6])).get()
        _ = try allocator.allocate(request("both3", families: [.ipv4, .ipv6])).get()
        guard case .failure(.noAddress(let shortages)) = allocator.allocate(request("both4", families: [.ipv4, .ipv6])) else {
            Issue.record("RequireDualStack must fail once the dual pool is out of IPv6")
            return
        }
        #expect(shortages.contains(PoolShortage(pool: "v6", family: .ipv4, hasFamily: false)))
        // PreferDualStack settles for what there is.
        #expect(try allocator.allocate(request("prefer", families: [.ipv4, .ipv6], requireAll: false)).get() == ips("192.0.2.3"))
    }

    @Test func familyMismatchesAreReported() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28", "2001:db8::/120"])])
        guard case .failure(.wrongFamily) = allocator.allocate(request("s", families: [.ipv4], requested: ["2001:db8::5"])) else {
            Issue.record("an IPv6 request on an IPv4 service must fail")
            return
        }
        guard case .failure(.missingFamily(.ipv6, _)) = allocator.allocate(request("d", families: [.ipv4, .ipv6], requested: ["192.0.2.5"])) else {
            Issue.record("RequireDualStack with one requested address must fail")
            return
        }
    }

    @Test func exhaustReleaseAndReuse() throws {
        var allocator = Allocator(pools: [try pool("small", ["192.0.2.0/30"])])
        for index in 0..<4 { _ = try allocator.allocate(request("s\(index)")).get() }
        guard case .failure(.noAddress(let shortages)) = allocator.allocate(request("s4")) else {
            Issue.record("fifth service must not fit in a /30")
            return
        }
        #expect(shortages == [PoolShortage(pool: "small", family: .ipv4, hasFamily: true)])
        allocator.release("default/s2")
        #expect(try allocator.allocate(request("s4")).get() == ips("192.0.2.2"))
    }

    @Test func configReloads() throws {
        let held = ips("192.0.2.20")
        let service = request("s")
        // Same config, grown pool, split pool, renamed pool: the address stays.
        for pools in [[try pool("a", ["192.0.2.0/24"])], [try pool("a", ["192.0.2.0/23"])],
                      [try pool("a", ["192.0.2.0/27"]), try pool("b", ["192.0.2.32/27"])],
                      [try pool("renamed", ["192.0.2.0/24"])]] {
            var allocator = Allocator(pools: pools)
            #expect(allocator.keep(held, for: service) == nil, "keep in \(pools.map(\.name))")
        }
        // Shrunk past the address: it no longer fits and the service moves.
        var shrunk = Allocator(pools: [try pool("a", ["192.0.2.0/28"])])
        #expect(shrunk.keep(held, for: service) == .refused(.outsidePools(held[0])))
        #expect(try shrunk.allocate(service).get() == ips("192.0.2.0"))
        // avoidBuggyIPs turned on under a .0 address.
        var buggy = Allocator(pools: [try pool("a", ["192.0.2.0/24"], avoidBuggyIPs: true)])
        #expect(buggy.keep(ips("192.0.2.0"), for: service) != nil)
    }

    @Test func pinnedPoolsByNamespaceLabelAndPriority() throws {
        let pools = [
            try pool("shared", ["192.0.2.0/28"]),
            try pool("team-low", ["198.51.100.0/28"], allocation: ServiceAllocation(priority: 20, namespaces: ["team"])),
            try pool("team-high", ["198.51.100.16/28"], allocation: ServiceAllocation(priority: 10, namespaces: ["team"])),
            try pool("gold", ["203.0.113.0/28"], allocation: ServiceAllocation(
                namespaceSelectors: [LabelSelector(matchLabels: ["tier": "gold"])],
                serviceSelectors: [LabelSelector(matchExpressions: [.init(key: "app", operator: .in, values: ["pay"])])])),
        ]
        var allocator = Allocator(pools: pools)
        #expect(try allocator.allocate(request("x", namespace: "team")).get() == ips("198.51.100.16"))
        #expect(try allocator.allocate(request("y", namespace: "other")).get() == ips("192.0.2.0"))
        #expect(try allocator.allocate(request("pay", namespace: "shop", labels: ["app": "pay"], nsLabels: ["tier": "gold"])).get()
                == ips("203.0.113.0"))
        // The namespace matches gold but the service selector does not.
        #expect(try allocator.allocate(request("cart", namespace: "shop", labels: ["app": "cart"], nsLabels: ["tier": "gold"])).get()
                == ips("192.0.2.1"))
        // An address in a pinned pool doesn't fit a service the pool no longer serves.
        #expect(Allocator(pools: pools).misfit(ips("198.51.100.16"), for: request("x", namespace: "team")) == nil)
        #expect(Allocator(pools: pools).misfit(ips("198.51.100.16"), for: request("x", namespace: "moved"))
                == .notEligible(IPAddress("198.51.100.16")!, pool: "team-high"))
    }

    @Test func autoAssignOffServesOnlyRequestsAndPoolAnnotations() throws {
        var allocator = Allocator(pools: [try pool("reserved", ["192.0.2.0/30"], autoAssign: false)])
        #expect(allocator.allocate(request("auto")) == .failure(.noEligiblePool))
        #expect(try allocator.allocate(request("named", pool: "reserved")).get() == ips("192.0.2.0"))
        #expect(try allocator.allocate(request("asked", requested: ["192.0.2.3"])).get() == ips("192.0.2.3"))
        #expect(allocator.allocate(request("typo", pool: "reserve")) == .failure(.unknownPool("reserve")))
    }

    @Test func requestsOutsidePoolsOrOutsideTheNamedPoolFail() throws {
        var allocator = Allocator(pools: [try pool("a", ["192.0.2.0/28"]), try pool("b", ["198.51.100.0/28"])])
        #expect(allocator.allocate(request("s", requested: ["203.0.113.9"]))
                == .failure(.refused(.outsidePools(IPAddress("203.0.113.9")!))))
        #expect(allocator.allocate(request("s", requested: ["192.0.2.3"], pool: "b"))
                == .failure(.notInPool(IPAddress("192.0.2.3")!, pool: "b", actual: "a")))
    }

    @Test func poolCountsIncludingA64() throws {
        var allocator = Allocator(pools: [try pool("big", ["2001:db8::/64", "192.0.2.0/24"], avoidBuggyIPs: true)])
        _ = try allocator.allocate(request("a", families: [.ipv6])).get()
        _ = try allocator.allocate(request("b", families: [.ipv4, .ipv6])).get()
        let usage = try #require(allocator.space.usage(ofPool: "big"))
        #expect(usage.ipv6.total.description == "18446744073709551616")
        #expect(usage.ipv6.inUse == 2)
        #expect(usage.ipv6.available.description == "18446744073709551614")
        #expect(usage.ipv4.total == 254)
        #expect(usage.ipv4.inUse == 1)
    }

    @Test func failureMessagesSayWhatIsWrong() throws {
        #expect(AllocationFailure.unknownPool("gold").description == "unknown pool \"gold\"")
        #expect(AllocationFailure.noAddress([PoolShortage(pool: "a", family: .ipv4, hasFamily: true)]).description
                == "no available address: pool \"a\" has no free IPv4 address")
    }
}
