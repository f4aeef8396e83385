import Testing
import VIPAllocation
import VIPPacket
import VIPModel

private func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

private func pool(_ name: String, _ ranges: [String], avoidBuggyIPs: Bool = false) -> PoolDefinition {
    PoolDefinition(name: name, ranges: ranges.map { try! AddressRange.parse($0) }, avoidBuggyIPs: avoidBuggyIPs)
}

/// Allocates the lowest available address of `family` to `owner`, the way the policy layer will.
@discardableResult
private func allocate(
    _ space: inout AddressSpace, _ poolName: String, _ owner: String,
    family: IPFamily = .ipv4, profile: SharingProfile = .exclusive
) throws -> IPAddress? {
    guard let address = space.lowestAvailable(inPool: poolName, family: family, for: profile) else { return nil }
    try space.assign(address, to: owner, profile: profile)
    return address
}

private func tcp(_ ports: Int...) -> Set<ServicePortKey> {
    Set(ports.map { ServicePortKey(port: $0, protocol: "TCP") })
}

@Suite struct AddressSpaceTests {
    @Test func lowestFreeFollowsAddressOrderAcrossUnsortedRanges() throws {
        var space = AddressSpace(pools: [pool("a", ["192.0.2.10-192.0.2.11", "192.0.2.1", "192.0.2.5/31"])])
        var got: [String] = []
        for i in 0..<6 {
            if let address = try allocate(&space, "a", "ns/s\(i)") { got.append(address.description) }
        }
        #expect(got == ["192.0.2.1", "192.0.2.4", "192.0.2.5", "192.0.2.10", "192.0.2.11"])
        #expect(space.lowestAvailable(inPool: "a", family: .ipv4, for: .exclusive) == nil)
        #expect(space.lowestAvailable(inPool: "a", family: .ipv6, for: .exclusive) == nil)
        #expect(space.lowestAvailable(inPool: "missing", family: .ipv4, for: .exclusive) == nil)
    }

    @Test func avoidBuggyIPsAcrossPartialBlocks() throws {
        var space = AddressSpace(pools: [pool("b", ["192.0.2.250-192.0.3.5"], avoidBuggyIPs: true)])
        #expect(space.usage(ofPool: "b")?.ipv4.total == 10)
        var got: [String] = []
        while let address = try allocate(&space, "b", "ns/s\(got.count)") { got.append(address.description) }
        #expect(got == [
            "192.0.2.250", "192.0.2.251", "192.0.2.252", "192.0.2.253", "192.0.2.254",
            "192.0.3.1", "192.0.3.2", "192.0.3.3", "192.0.3.4", "192.0.3.5",
        ])
        #expect(space.usage(ofPool: "b")?.ipv4.available == .zero)
        #expect(space.pool(containing: ip("192.0.2.255")) == nil)
        #expect(space.pool(containing: ip("192.0.3.0")) == nil)
        #expect(space.pool(containing: ip("192.0.3.1")) == "b")
        #expect(space.checkAssign(ip("192.0.2.255"), to: "ns/x", profile: .exclusive) == .excluded(ip("192.0.2.255"), pool: "b"))
        #expect(
            AssignmentError.excluded(ip("192.0.2.255"), pool: "b").description
                == "192.0.2.255 is excluded from pool \"b\" by avoidBuggyIPs")
        #expect(throws: AssignmentError.excluded(ip("192.0.3.0"), pool: "b")) {
            try space.assign(ip("192.0.3.0"), to: "ns/x", profile: .exclusive)
        }
    }

    @Test func avoidBuggyIPsCountsWholeBlocksAndIgnoresIPv6() {
        let space = AddressSpace(pools: [
            pool("c", ["10.0.0.0/8", "2001:db8::/120"], avoidBuggyIPs: true),
            pool("d", ["192.0.2.0/32", "192.0.2.255/32"], avoidBuggyIPs: true),
        ])
        #expect(space.usage(ofPool: "c")?.ipv4.total == AddressCount(65536 * 254))
        #expect(space.usage(ofPool: "c")?.ipv6.total == 256)
        #expect(space.lowestAvailable(inPool: "c", family: .ipv4, for: .exclusive) == ip("10.0.0.1"))
        #expect(space.lowestAvailable(inPool: "c", family: .ipv6, for: .exclusive) == ip("2001:db8::"))
        // Only excluded addresses: the family is configured but has nothing to give.
        #expect(space.usage(ofPool: "d")?.ipv4.total == .zero)
        #expect(space.lowestAvailable(inPool: "d", family: .ipv4, for: .exclusive) == nil)
        #expect(space.families(ofPool: "d") == [.ipv4])
        #expect(space.families(ofPool: "c") == [.ipv4, .ipv6])
    }

    @Test func exhaustReleaseAndReuseLowest() throws {
        var space = AddressSpace(pools: [pool("small", ["192.0.2.0/30"])])
        for i in 0..<4 { try allocate(&space, "small", "ns/s\(i)") }
        #expect(space.lowestAvailable(inPool: "small", family: .ipv4, for: .exclusive) == nil)
        #expect(space.usage(ofPool: "small")?.ipv4 == FamilyUsage(total: 4, inUse: 4))
        space.release(owner: "ns/s2")
        space.release(owner: "ns/s1")
        space.release(owner: "ns/unknown")
        #expect(space.usage(ofPool: "small")?.ipv4.inUse == 2)
        #expect(space.addresses(of: "ns/s1") == [])
        #expect(space.owners(of: ip("192.0.2.1")) == [])
        #expect(try allocate(&space, "small", "ns/new1") == ip("192.0.2.1"))
        #expect(try allocate(&space, "small", "ns/new2") == ip("192.0.2.2"))
        #expect(try allocate(&space, "small", "ns/new3") == nil)
    }

    @Test func sharingAllowedWhenCompatible() throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29"])])
        let web = SharingProfile(key: "k", ports: tcp(80))
        let tls = SharingProfile(key: "k", ports: tcp(443))
        try allocate(&space, "p", "default/web", profile: web)          // .0
        try allocate(&space, "p", "default/other")                       // .1
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: tls) == ip("192.0.2.0"))
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: web) == ip("192.0.2.2"))
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: .exclusive) == ip("192.0.2.2"))
        try space.assign(ip("192.0.2.0"), to: "default/tls", profile: tls)
        #expect(space.owners(of: ip("192.0.2.0")) == ["default/tls", "default/web"])
        #expect(space.usage(ofPool: "p")?.ipv4.inUse == 2)
        // The address stays held until its last sharer leaves.
        space.release(owner: "default/web")
        #expect(space.owners(of: ip("192.0.2.0")) == ["default/tls"])
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: .exclusive) == ip("192.0.2.2"))
        space.release(owner: "default/tls")
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: .exclusive) == ip("192.0.2.0"))
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: web) == ip("192.0.2.0"))
    }

    @Test func sharedCandidateAboveFreeAddressLoses() throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29"])])
        for i in 0..<3 { try allocate(&space, "p", "ns/s\(i)") }
        try allocate(&space, "p", "ns/shared", profile: SharingProfile(key: "k", ports: tcp(80)))  // .3
        space.release(owner: "ns/s1")
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: SharingProfile(key: "k", ports: tcp(443))) == ip("192.0.2.1"))
    }

    @Test(arguments: [
        (SharingProfile(key: "k", ports: tcp(80, 8080), backendKey: "app=web"), "port 80/TCP is used by both"),
        (SharingProfile(key: "k", ports: tcp(80, 443), backendKey: "app=web"), "ports 80/TCP, 443/TCP are used by both"),
        (SharingProfile(key: "k", ports: tcp(8443)), "externalTrafficPolicy Local and Cluster cannot share an address"),
        (SharingProfile(key: "other", ports: tcp(8443)), "different sharing key"),
        (SharingProfile(key: "k", ports: tcp(8443), backendKey: "app=db"), "different pod selector under externalTrafficPolicy Local"),
        (SharingProfile(key: "k", ports: tcp(8443), backendKey: "app=web"), nil),
        (SharingProfile(key: "", ports: tcp(8443)), "no sharing key"),
        (SharingProfile(key: "k", ports: [ServicePortKey(port: 80, protocol: "UDP")], backendKey: "app=web"), nil),
    ] as [(SharingProfile, String?)])
    func sharingRefusals(profile: SharingProfile, reason: String?) throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29"])])
        let existing = SharingProfile(key: "k", ports: tcp(80, 443), backendKey: "app=web")
        try space.assign(ip("192.0.2.3"), to: "default/web", profile: existing)
        let error = space.checkAssign(ip("192.0.2.3"), to: "default/new", profile: profile)
        if let reason {
            #expect(error == .inUse(ip("192.0.2.3"), by: ["default/web"], reason: reason))
            #expect(error?.description == "192.0.2.3 is already in use by default/web: \(reason)")
            #expect(throws: AssignmentError.self) { try space.assign(ip("192.0.2.3"), to: "default/new", profile: profile) }
            #expect(space.owners(of: ip("192.0.2.3")) == ["default/web"])
            #expect(space.addresses(of: "default/new") == [])
            #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: profile) == ip("192.0.2.0"))
            #expect(!profile.isCompatible(with: existing))
        } else {
            #expect(error == nil)
            #expect(profile.isCompatible(with: existing))
            #expect(existing.isCompatible(with: profile))
            try space.assign(ip("192.0.2.3"), to: "default/new", profile: profile)
            #expect(space.owners(of: ip("192.0.2.3")) == ["default/new", "default/web"])
            #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: profile) == ip("192.0.2.0"))
        }
    }

    @Test func exclusiveHolderRefusesEveryone() throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29"])])
        try space.assign(ip("192.0.2.3"), to: "default/web", profile: .exclusive)
        let error = space.checkAssign(ip("192.0.2.3"), to: "default/new", profile: SharingProfile(key: "k"))
        #expect(error?.description == "192.0.2.3 is already in use by default/web: no sharing key")
        #expect(!SharingProfile.exclusive.isCompatible(with: .exclusive))
    }

    @Test func reassigningIsIdempotentAndMovesWithinFamily() throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29", "2001:db8::/64"])])
        let profile = SharingProfile(key: "k", ports: tcp(80))
        try space.assign(ip("192.0.2.5"), to: "ns/a", profile: profile)
        try space.assign(ip("192.0.2.5"), to: "ns/a", profile: profile)
        #expect(space.checkAssign(ip("192.0.2.5"), to: "ns/a", profile: profile) == nil)
        #expect(space.owners(of: ip("192.0.2.5")) == ["ns/a"])
        #expect(space.usage(ofPool: "p")?.ipv4.inUse == 1)
        try space.assign(ip("2001:db8::7"), to: "ns/a", profile: profile)
        #expect(space.addresses(of: "ns/a") == [ip("192.0.2.5"), ip("2001:db8::7")])
        // A second IPv4 address replaces the first: one address per family.
        try space.assign(ip("192.0.2.6"), to: "ns/a", profile: profile)
        #expect(space.addresses(of: "ns/a") == [ip("192.0.2.6"), ip("2001:db8::7")])
        #expect(space.owners(of: ip("192.0.2.5")) == [])
        #expect(space.usage(ofPool: "p")?.ipv4.inUse == 1)
        #expect(space.usage(ofPool: "p")?.ipv6.inUse == 1)
        #expect(space.profile(of: "ns/a") == profile)
        space.release(owner: "ns/a")
        #expect(space.usage(ofPool: "p") == PoolUsage(
            ipv4: FamilyUsage(total: 8, inUse: 0),
            ipv6: FamilyUsage(total: AddressCount(UInt128(1) << 64), inUse: 0)))
        #expect(space.profile(of: "ns/a") == nil)
    }

    @Test func profileChangeMustStillFitTheKeptAddress() throws {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29", "2001:db8::/64"])])
        try space.assign(ip("2001:db8::1"), to: "ns/a", profile: SharingProfile(key: "k", ports: tcp(80)))
        try space.assign(ip("2001:db8::1"), to: "ns/b", profile: SharingProfile(key: "k", ports: tcp(443)))
        // ns/b now wants port 80 too: its IPv4 request is fine, but the IPv6 address it keeps is not.
        let changed = SharingProfile(key: "k", ports: tcp(80, 443))
        let error = space.checkAssign(ip("192.0.2.1"), to: "ns/b", profile: changed)
        #expect(error == .inUse(ip("2001:db8::1"), by: ["ns/a"], reason: "port 80/TCP is used by both"))
        // A compatible change re-indexes the owner under its new key.
        try space.assign(ip("192.0.2.1"), to: "ns/a", profile: SharingProfile(key: "k", ports: tcp(80, 8080)))
        try space.assign(ip("2001:db8::2"), to: "ns/c", profile: SharingProfile(key: "j"))
        try space.assign(ip("2001:db8::2"), to: "ns/c", profile: SharingProfile(key: "j2"))
        #expect(space.lowestAvailable(inPool: "p", family: .ipv6, for: SharingProfile(key: "j2", ports: tcp(1))) == ip("2001:db8::"))
        space.release(owner: "ns/a")
        space.release(owner: "ns/b")
        #expect(space.lowestAvailable(inPool: "p", family: .ipv6, for: SharingProfile(key: "j2", ports: tcp(1))) == ip("2001:db8::"))
        try space.assign(ip("2001:db8::"), to: "ns/z", profile: .exclusive)
        try space.assign(ip("2001:db8::1"), to: "ns/y", profile: .exclusive)
        #expect(space.lowestAvailable(inPool: "p", family: .ipv6, for: SharingProfile(key: "j2", ports: tcp(1))) == ip("2001:db8::2"))
        #expect(space.lowestAvailable(inPool: "p", family: .ipv6, for: SharingProfile(key: "j", ports: tcp(1))) == ip("2001:db8::3"))
    }

    @Test func addressOutsidePoolsThrows() {
        var space = AddressSpace(pools: [pool("p", ["192.0.2.0/29"])])
        for text in ["192.0.2.8", "10.0.0.1", "2001:db8::1", "0.0.0.0", "255.255.255.255", "::"] {
            #expect(throws: AssignmentError.outsidePools(ip(text))) {
                try space.assign(ip(text), to: "ns/x", profile: .exclusive)
            }
            #expect(space.pool(containing: ip(text)) == nil)
        }
        #expect(AssignmentError.outsidePools(ip("192.0.2.7")).description == "192.0.2.7 is not in any address pool")
        #expect(space.addresses(of: "ns/x") == [])
        var empty = AddressSpace(pools: [])
        #expect(throws: AssignmentError.self) { try empty.assign(ip("192.0.2.1"), to: "ns/x", profile: .exclusive) }
        #expect(empty.poolNames == [])
    }

    @Test func usageIsExactForHugePools() throws {
        var space = AddressSpace(pools: [
            pool("world", ["::/0", "10.0.0.0/8"]),
            pool("v6", ["2001:db8::/64"]),
            pool("dual", ["192.0.2.0/24", "2001:db8:1::/120", "2001:db8:1::100/120"]),
        ])
        #expect(space.poolNames == ["dual", "v6", "world"])
        #expect(space.usage(ofPool: "v6")?.ipv6.total.description == "18446744073709551616")
        #expect(try allocate(&space, "v6", "ns/a", family: .ipv6) == ip("2001:db8::"))
        #expect(space.usage(ofPool: "v6")?.ipv6.available.description == "18446744073709551615")
        // "world" comes last by name, so it keeps ::/0 minus what "dual" and "v6" own.
        let world = AddressCount.allIPv6 - AddressCount(UInt128(1) << 64) - 512
        #expect(space.usage(ofPool: "world")?.ipv6.total == world)
        #expect(space.usage(ofPool: "world")?.ipv4.total == 16_777_216)
        #expect(try allocate(&space, "world", "ns/b", family: .ipv6) == ip("::"))
        #expect(space.usage(ofPool: "world")?.ipv6.available == world - 1)
        #expect(space.pool(containing: ip("2001:db8::5")) == "v6")
        #expect(space.pool(containing: ip("2001:db8:1::1ff")) == "dual")
        #expect(space.pool(containing: ip("2001:db8:1::200")) == "world")
        #expect(space.pool(containing: ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) == "world")
        // Addresses right after the carved-out /64 are still reachable by ordinal.
        try space.assign(ip("2001:db8:0:1::"), to: "ns/c", profile: .exclusive)
        #expect(space.usage(ofPool: "world")?.ipv6.inUse == 2)
        #expect(space.usage(ofPool: "nope") == nil)
    }

    @Test func wholeIPv6SpaceCountsExactly() throws {
        var space = AddressSpace(pools: [pool("all", ["::/0"])])
        #expect(space.usage(ofPool: "all")?.ipv6.total == .allIPv6)
        #expect(space.usage(ofPool: "all")?.ipv6.total.description == "340282366920938463463374607431768211456")
        try space.assign(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), to: "ns/last", profile: .exclusive)
        #expect(try allocate(&space, "all", "ns/first", family: .ipv6) == ip("::"))
        #expect(space.usage(ofPool: "all")?.ipv6.available == AddressCount(UInt128.max - 1))
    }

    @Test func dualFamilyPoolUsage() throws {
        var space = AddressSpace(pools: [pool("dual", ["192.0.2.0/24", "2001:db8:1::/120", "2001:db8:1::100/120"])])
        #expect(space.usage(ofPool: "dual")?.ipv6.total == 512)   // adjacent ranges merge
        #expect(space.families(ofPool: "dual") == [.ipv4, .ipv6])
        let v4 = try allocate(&space, "dual", "ns/a", family: .ipv4)
        let v6 = try allocate(&space, "dual", "ns/a", family: .ipv6)
        #expect(v4 == ip("192.0.2.0"))
        #expect(v6 == ip("2001:db8:1::"))
        #expect(space.usage(ofPool: "dual") == PoolUsage(
            ipv4: FamilyUsage(total: 256, inUse: 1), ipv6: FamilyUsage(total: 512, inUse: 1)))
        #expect(space.addresses(of: "ns/a") == [ip("192.0.2.0"), ip("2001:db8:1::")])
        #expect(space.ownerNames == ["ns/a"])
    }

    @Test func overlappingPoolsDoNotCrash() throws {
        let definitions = [
            pool("z", ["192.0.2.0/24"]),
            pool("a", ["192.0.2.128/25", "192.0.2.100-192.0.2.130"]),
            pool("a", ["198.51.100.0/24"]),  // duplicate name: the first one wins
        ]
        var space = AddressSpace(pools: definitions)
        #expect(space.poolNames == ["a", "z"])
        #expect(space.pool(containing: ip("192.0.2.150")) == "a")
        #expect(space.pool(containing: ip("192.0.2.99")) == "z")
        #expect(space.pool(containing: ip("198.51.100.1")) == nil)
        #expect(space.usage(ofPool: "a")?.ipv4.total == 156)
        #expect(space.usage(ofPool: "z")?.ipv4.total == 100)
        #expect(space.definition(ofPool: "z") == definitions[0])
        while try allocate(&space, "z", "ns/z\(space.ownerNames.count)") != nil {}
        #expect(space.addresses(of: "ns/z99") == [ip("192.0.2.99")])
        #expect(space.lowestAvailable(inPool: "a", family: .ipv4, for: .exclusive) == ip("192.0.2.100"))
    }

    @Test func resultsAreDeterministic() throws {
        func run(_ definitions: [PoolDefinition]) throws -> [String] {
            var space = AddressSpace(pools: definitions)
            var rng = SplitMix64(seed: 42)
            var log: [String] = []
            for step in 0..<400 {
                if step % 3 == 2 {
                    let victim = "ns/s\(rng.next() % UInt64(step))"
                    space.release(owner: victim)
                    log.append("-\(victim)")
                } else {
                    let name = rng.next() % 2 == 0 ? "x" : "y"
                    let address = try allocate(&space, name, "ns/s\(step)")
                    log.append("\(name):\(address?.description ?? "none")")
                }
            }
            return log
        }
        let x = pool("x", ["10.0.0.0/24", "10.0.5.0/25"], avoidBuggyIPs: true)
        let y = pool("y", ["10.1.0.0/26"])
        #expect(try run([x, y]) == run([y, x]))
    }

    /// Differential test of the ordinal mapping and allocator against a brute-force model.
    @Test(arguments: [UInt64(7), 8, 9, 10])
    func matchesBruteForceModel(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let avoid = seed % 2 == 0
        var ranges: [String] = []
        for _ in 0..<4 {
            let start = UInt32(0x0A00_0000) + UInt32(rng.next() % 1200)
            let end = start + UInt32(rng.next() % 300)
            ranges.append("\(IPAddress(family: .ipv4, value: UInt128(start)))-\(IPAddress(family: .ipv4, value: UInt128(end)))")
        }
        let definition = pool("m", ranges, avoidBuggyIPs: avoid)
        var usable = Set<IPAddress>()
        for range in definition.ranges {
            for value in range.first.value...range.last.value where !avoid || (value % 256 != 0 && value % 256 != 255) {
                usable.insert(IPAddress(family: .ipv4, value: value))
            }
        }
        var space = AddressSpace(pools: [definition])
        #expect(space.usage(ofPool: "m")?.ipv4.total == AddressCount(UInt128(usable.count)))
        var held: [String: IPAddress] = [:]
        for step in 0..<3_000 {
            if rng.next() % 3 == 0, let victim = held.keys.sorted().randomElement(using: &rng) {
                space.release(owner: victim)
                held[victim] = nil
            } else {
                let taken = Set(held.values)
                let expected = usable.filter { !taken.contains($0) }.min()
                let got = try allocate(&space, "m", "ns/o\(step)")
                #expect(got == expected)
                if let got { held["ns/o\(step)"] = got }
            }
            #expect(space.usage(ofPool: "m")?.ipv4.inUse == AddressCount(UInt128(held.count)))
        }
        for address in usable {
            #expect(space.pool(containing: address) == "m")
        }
    }

    /// Heavy owner churn exercises owner-id recycling and the owner table's tombstones and rehashing.
    @Test func ownerChurnKeepsOwnersConsistent() throws {
        var space = AddressSpace(pools: [pool("p", ["10.0.0.0/20"])])
        var rng = SplitMix64(seed: 99)
        var live: [String: IPAddress] = [:]
        for step in 0..<6_000 {
            if live.count > 300 || (rng.next() % 3 == 0 && !live.isEmpty) {
                let victim = live.keys.sorted()[Int(rng.next() % UInt64(live.count))]
                space.release(owner: victim)
                live[victim] = nil
                #expect(space.addresses(of: victim) == [])
            } else {
                let name = "ns-\(step % 7)/svc-\(step)"
                live[name] = try allocate(&space, "p", name)
            }
        }
        #expect(space.ownerNames == live.keys.sorted())
        for (name, address) in live {
            #expect(space.addresses(of: name) == [address])
            #expect(space.owners(of: address) == [name])
        }
        #expect(space.usage(ofPool: "p")?.ipv4.inUse == AddressCount(UInt128(live.count)))
    }

    /// Requested addresses scattered over a /16 and released at random: holder pages are created,
    /// recycled and removed from the page index, and every address must keep exactly its holder.
    @Test func scatteredHoldersStayExact() throws {
        var space = AddressSpace(pools: [pool("p", ["10.1.0.0/16"])])
        var rng = SplitMix64(seed: 5)
        var holder: [IPAddress: String] = [:]
        for step in 0..<4_000 {
            if rng.next() % 3 == 0, let victim = holder.values.sorted().first(where: { _ in rng.next() % 4 == 0 }) {
                space.release(owner: victim)
                holder = holder.filter { $0.value != victim }
            } else {
                let address = IPAddress(family: .ipv4, value: 0x0A01_0000 + UInt128(rng.next() % 65_536))
                let name = "ns/s\(step)"
                if holder[address] == nil {
                    try space.assign(address, to: name, profile: .exclusive)
                    holder[address] = name
                } else {
                    #expect(space.checkAssign(address, to: name, profile: .exclusive) != nil)
                }
            }
        }
        for (address, name) in holder {
            #expect(space.owners(of: address) == [name])
            #expect(space.addresses(of: name) == [address])
        }
        #expect(space.usage(ofPool: "p")?.ipv4.inUse == AddressCount(UInt128(holder.count)))
        let expectedLowest = (UInt128(0x0A01_0000)...).first { holder[IPAddress(family: .ipv4, value: $0)] == nil }
        #expect(space.lowestAvailable(inPool: "p", family: .ipv4, for: .exclusive)?.value == expectedLowest)
    }
}
