import VIPModel

/// The nft text of MetalVIP's table, `table inet metalvip`. Every service port is a key `VIP . l4proto . dport`
/// in a few maps, and nothing per service is a chain or a rule, so a change is only map elements:
/// - `services4/6`: key -> `goto lbN`, N its number of backends; looked up at prerouting and at output (clients
///   on the node). The VIP is never an interface address.
/// - `lbN-backends4/6`: `key . slot` -> `address . port` for the keys with N backends; chain `lbN` (one per
///   backend count in use) DNATs to slot `numgen random mod N`. (An anonymous `numgen` map per service took
///   20 s to load at 10k services: each is a kernel set of its own.) A chain and its maps are created and
///   deleted together: nft 1.0.6 refuses a new rule on a `typeof ... th dport` map it reads back from the
///   kernel ("conflicting protocols specified: tcp vs. th"), but not on one made in the same transaction.
/// - `masquerade4/6`: the Cluster keys; a match sets the masquerade mark, which postrouting tests, clears and
///   masquerades.
/// - `stats4/6`: the keys again, each element with its own counter, matched at filter hooks that see every
///   packet (NAT chains see only a connection's first one). 10k named counter objects made every later
///   transaction 15-30 ms slower: nft reads all objects into its cache before each command.
/// - `vips4/6`: every programmed VIP; `forward`/`output` filter chains reject what is still addressed to one
///   after dstnat (no service on that port, or no usable endpoint), so nothing to a VIP is routed back onto
///   the LAN, where our own ARP answer would loop it.
extension ForwardingState {
    static let table = "inet \(NFTName.table)"
    static let protocols: [ServicePort.PortProtocol] = [.tcp, .udp, .sctp]

    /// Whole table, replacing whatever a crashed predecessor left, in one transaction:
    /// `add` makes the `delete` succeed when there is no table.
    public func replacement() -> RulesetUpdate {
        var script = "add table \(Self.table)\ndelete table \(Self.table)\n"
        script += definition()
        return RulesetUpdate(script: script, isEmpty: false, changedServices: usableCounts.count,
                             state: self)
    }

    /// Deletes MetalVIP's table (SIGTERM), and only it; a no-op when it is already gone.
    public static func removal() -> RulesetUpdate {
        RulesetUpdate(script: "add table \(table)\ndelete table \(table)\n", isEmpty: false, changedServices: 0,
                      state: .empty)
    }

    /// Only the changed service ports' map elements, added or deleted; balancer chains and their maps added
    /// before the elements that name them and deleted after.
    public func update(from previous: ForwardingState) -> RulesetUpdate {
        guard previous.masqueradeMark == masqueradeMark else { return replacement() }
        var changed: Set<ObjectKey> = []
        let addedServices = usableCounts.keys.filter { previous.usableCounts[$0] == nil }.sorted()
        let removedServices = previous.usableCounts.keys.filter { usableCounts[$0] == nil }.sorted()
        changed.formUnion(addedServices)
        changed.formUnion(removedServices)

        // The keys of every rule that differs, as they were and as they are.
        var old: [ServiceAddress: ServicePortRule] = [:]
        var new: [ServiceAddress: ServicePortRule] = [:]
        for (id, rule) in rulesByID where previous.rulesByID[id] != rule {
            for vip in rule.vips { new[rule.element(vip)] = rule }
            changed.insert(rule.service)
            if let before = previous.rulesByID[id] {
                for vip in before.vips { old[before.element(vip)] = before }
            }
        }
        for (id, rule) in previous.rulesByID where rulesByID[id] == nil {
            for vip in rule.vips { old[rule.element(vip)] = rule }
            changed.insert(rule.service)
        }

        var deletions = Elements(), additions = Elements()
        for key in Set(old.keys).union(new.keys).sorted() {
            let before = old[key], after = new[key]
            let family = NFTName.family(key.vip.family)
            let text = Self.key(key)
            if before?.backends.count != after?.backends.count {
                if before != nil { deletions.add("services\(family)", text) }
                if let after { additions.add("services\(family)", "\(text) : goto \(NFTName.balancer(after.backends.count))") }
            }
            let beforeCount = before?.backends.count ?? 0, afterCount = after?.backends.count ?? 0
            if beforeCount != afterCount {
                // Another backend count: every slot moves to the other balancer's map.
                for slot in 0..<beforeCount { deletions.add(NFTName.backends(beforeCount, key.vip.family), "\(text) . \(slot)") }
                for (slot, backend) in (after?.backends ?? []).enumerated() {
                    additions.add(NFTName.backends(afterCount, key.vip.family), "\(text) . \(slot) : \(backend.address) . \(backend.port)")
                }
            } else if let before, let after {
                for slot in 0..<afterCount where before.backends[slot] != after.backends[slot] {
                    let map = NFTName.backends(afterCount, key.vip.family)
                    deletions.add(map, "\(text) . \(slot)")
                    additions.add(map, "\(text) . \(slot) : \(after.backends[slot].address) . \(after.backends[slot].port)")
                }
            }
            let wasMasqueraded = before?.masquerade ?? false, isMasqueraded = after?.masquerade ?? false
            if wasMasqueraded && !isMasqueraded { deletions.add("masquerade\(family)", text) }
            if isMasqueraded && !wasMasqueraded { additions.add("masquerade\(family)", text) }
            // A key that passes to another service starts counting afresh.
            if before?.service != after?.service {
                if before != nil { deletions.add("stats\(family)", text) }
                if after != nil { additions.add("stats\(family)", text) }
            }
        }

        var lines: [String] = []
        let balancers = balancerCounts, previousBalancers = previous.balancerCounts
        for count in balancers.subtracting(previousBalancers).sorted() { lines += Self.balancerCommands(count) }
        lines += deletions.commands("delete")
        lines += additions.commands("add")
        for count in previousBalancers.subtracting(balancers).sorted() {
            lines.append("delete chain \(Self.table) \(NFTName.balancer(count))")
            for family in IPFamily.allCases { lines.append("delete map \(Self.table) \(NFTName.backends(count, family))") }
        }
        for family in IPFamily.allCases {
            let added = vips.subtracting(previous.vips).filter { $0.family == family }.sorted()
            let removed = previous.vips.subtracting(vips).filter { $0.family == family }.sorted()
            if !added.isEmpty {
                lines.append("add element \(Self.table) vips\(NFTName.family(family)) { \(added.map(\.description).joined(separator: ", ")) }")
            }
            if !removed.isEmpty {
                lines.append("delete element \(Self.table) vips\(NFTName.family(family)) { \(removed.map(\.description).joined(separator: ", ")) }")
            }
        }
        let script = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
        return RulesetUpdate(script: script, isEmpty: lines.isEmpty, changedServices: changed.count,
                             state: self)
    }

    /// Map elements of one update, per map, in key order.
    struct Elements {
        var byMap: [String: [String]] = [:]
        var order: [String] = []

        mutating func add(_ map: String, _ element: String) {
            if byMap[map] == nil { order.append(map) }
            byMap[map, default: []].append(element)
        }

        func commands(_ verb: String) -> [String] {
            order.sorted().map { "\(verb) element \(ForwardingState.table) \($0) { \(byMap[$0]!.joined(separator: ", ")) }" }
        }
    }

    /// `table inet metalvip { ... }` with every object, sorted so the text is stable.
    func definition() -> String {
        let mark = Self.hex(masqueradeMark)
        let sortedRules = rulesByID.values.sorted { $0.id < $1.id }
        var text = "table \(Self.table) {\n"
        text.reserveCapacity(200 * (rulesByID.count + 10))
        for family in IPFamily.allCases {
            let suffix = NFTName.family(family)
            let (type, match) = family == .ipv4 ? ("ipv4_addr", "ip") : ("ipv6_addr", "ip6")
            let keys = sortedRules.filter { $0.family == family }.flatMap { rule in rule.vips.map { (rule.element($0), rule) } }
                .sorted { $0.0 < $1.0 }
            let keyType = "\(type) . inet_proto . inet_service"
            func block(_ kind: String, _ name: String, _ declaration: String, _ elements: [String]) {
                text += "\t\(kind) \(name)\(suffix) {\n\t\t\(declaration.replacingOccurrences(of: "; ", with: "\n\t\t"))\n"
                if !elements.isEmpty { text += "\t\telements = { \(elements.joined(separator: ", ")) }\n" }
                text += "\t}\n"
            }
            block("set", "vips", "type \(type)", vips.filter { $0.family == family }.sorted().map(\.description))
            block("map", "services", "type \(keyType) : verdict",
                  keys.map { "\(Self.key($0.0)) : goto \(NFTName.balancer($0.1.backends.count))" })
            block("set", "masquerade", "type \(keyType)", keys.filter { $0.1.masquerade }.map { Self.key($0.0) })
            block("set", "stats", "type \(keyType); counter", keys.map { Self.key($0.0) })
        }
        for count in balancerCounts.sorted() {
            for family in IPFamily.allCases {
                let elements = sortedRules.filter { $0.family == family && $0.backends.count == count }
                    .flatMap { rule in rule.vips.map { (rule.element($0), rule) } }.sorted { $0.0 < $1.0 }
                    .flatMap { key, rule in
                        rule.backends.enumerated().map { "\(Self.key(key)) . \($0.offset) : \($0.element.address) . \($0.element.port)" }
                    }
                text += "\tmap \(NFTName.backends(count, family)) {\n\t\t\(Self.backendsType(family))\n"
                if !elements.isEmpty { text += "\t\telements = { \(elements.joined(separator: ", ")) }\n" }
                text += "\t}\n"
            }
            text += "\tchain \(NFTName.balancer(count)) {\n"
            for rule in Self.balancerRules(count) { text += "\t\t\(rule)\n" }
            text += "\t}\n"
        }
        let lookup = """
            \t\tip daddr . meta l4proto . th dport @masquerade4 meta mark set meta mark | \(mark)
            \t\tip6 daddr . meta l4proto . th dport @masquerade6 meta mark set meta mark | \(mark)
            \t\tip daddr . meta l4proto . th dport vmap @services4
            \t\tip6 daddr . meta l4proto . th dport vmap @services6

            """
        let reject = "\t\tip daddr @vips4 jump reject-vip\n\t\tip6 daddr @vips6 jump reject-vip\n"
        text += """
            \tchain nat-prerouting {
            \t\ttype nat hook prerouting priority dstnat; policy accept;
            \(lookup)\t}
            \tchain nat-output {
            \t\ttype nat hook output priority -100; policy accept;
            \(lookup)\t}
            \tchain nat-postrouting {
            \t\ttype nat hook postrouting priority srcnat; policy accept;
            \t\tmeta mark & \(mark) == 0x00000000 return
            \t\tmeta mark set meta mark ^ \(mark)
            \t\tmasquerade
            \t}
            \tchain count-prerouting {
            \t\ttype filter hook prerouting priority mangle; policy accept;
            \t\tip daddr . meta l4proto . th dport @stats4
            \t\tip6 daddr . meta l4proto . th dport @stats6
            \t}
            \tchain count-output {
            \t\ttype filter hook output priority mangle; policy accept;
            \t\tip daddr . meta l4proto . th dport @stats4
            \t\tip6 daddr . meta l4proto . th dport @stats6
            \t}
            \tchain count-replies {
            \t\ttype filter hook postrouting priority srcnat + 10; policy accept;
            \t\tip saddr . meta l4proto . th sport @stats4
            \t\tip6 saddr . meta l4proto . th sport @stats6
            \t}
            \tchain reject-vip {
            \t\tmeta l4proto tcp reject with tcp reset
            \t\treject with icmpx type port-unreachable
            \t}
            \tchain filter-forward {
            \t\ttype filter hook forward priority filter; policy accept;
            \(reject)\t}
            \tchain filter-output {
            \t\ttype filter hook output priority filter; policy accept;
            \(reject)\t}
            }

            """
        return text
    }

    /// `key . slot : address . port`, declared by example (`typeof`): nft has no named 32-bit integer type
    /// that matches `numgen`'s.
    static func backendsType(_ family: IPFamily) -> String {
        let match = family == .ipv4 ? "ip" : "ip6"
        return "typeof \(match) daddr . meta l4proto . th dport . numgen random mod 1 : \(match) daddr . th dport"
    }

    /// DNAT to slot `numgen random mod count` of the family's backends map. One rule per family and protocol:
    /// nft needs the protocol matched before a port rewrite.
    static func balancerRules(_ count: Int) -> [String] {
        IPFamily.allCases.flatMap { family in
            let (nfproto, match) = family == .ipv4 ? ("ipv4", "ip") : ("ipv6", "ip6")
            return protocols.map { proto in
                "meta nfproto \(nfproto) meta l4proto \(proto.rawValue.lowercased()) dnat \(match) to \(match) daddr . meta l4proto . th dport . numgen random mod \(count) map @\(NFTName.backends(count, family))"
            }
        }
    }

    /// A balancer chain with its maps, for an update: the maps first, as the rules name them.
    static func balancerCommands(_ count: Int) -> [String] {
        let chain = NFTName.balancer(count)
        return IPFamily.allCases.map { "add map \(table) \(NFTName.backends(count, $0)) { \(backendsType($0)); }" }
            + ["add chain \(table) \(chain)"] + balancerRules(count).map { "add rule \(table) \(chain) \($0)" }
    }

    static func key(_ address: ServiceAddress) -> String {
        "\(address.vip) . \(address.protocol.rawValue.lowercased()) . \(address.port)"
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
