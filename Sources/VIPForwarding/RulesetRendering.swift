import VIPModel

/// The nft text of MetalVIP's table, `table inet metalvip`:
/// - `vips4`/`vips6`: every programmed VIP; `forward`/`output` filter chains reject what is still addressed
///   to one after dstnat (no service on that port, or no usable endpoint), so nothing to a VIP is routed back
///   onto the LAN, where our own ARP answer would loop it.
/// - `services4`/`services6`: `VIP . l4proto . dport` -> `goto` the service port's chain, looked up at
///   prerouting and output (clients on the node). The VIP is never an interface address.
/// - one chain per service port and family: Cluster sets the masquerade mark, then DNAT picks a backend
///   with `numgen random`. Postrouting masquerades only marked packets and clears the bit.
/// - one named counter per service, reached through `counters4`/`counters6` maps at the filter hooks,
///   which see every packet (NAT chains see only a connection's first one).
extension ForwardingState {
    static let table = "inet \(NFTName.table)"

    /// Whole table, replacing whatever a crashed predecessor left, in one transaction:
    /// `add` makes the `delete` succeed when there is no table.
    public func replacement() -> RulesetUpdate {
        var script = "add table \(Self.table)\ndelete table \(Self.table)\n"
        script += definition()
        return RulesetUpdate(script: script, isEmpty: false, changedServices: usableCounts.count,
                             counterServices: counterServices)
    }

    /// Deletes MetalVIP's table (SIGTERM), and only it; a no-op when it is already gone.
    public static func removal() -> RulesetUpdate {
        RulesetUpdate(script: "add table \(table)\ndelete table \(table)\n", isEmpty: false, changedServices: 0,
                      counterServices: [:])
    }

    /// Only the changed service ports: new chains added, changed ones flushed and refilled, map elements
    /// added or deleted, and removed chains deleted after the elements that jump to them.
    public func update(from previous: ForwardingState) -> RulesetUpdate {
        guard previous.masqueradeMark == masqueradeMark else { return replacement() }
        var lines: [String] = []
        var changed: Set<ObjectKey> = []

        let addedServices = usableCounts.keys.filter { previous.usableCounts[$0] == nil }.sorted()
        let removedServices = previous.usableCounts.keys.filter { usableCounts[$0] == nil }.sorted()
        changed.formUnion(addedServices)
        changed.formUnion(removedServices)
        for service in addedServices { lines.append("add counter \(Self.table) \(NFTName.counter(service: service))") }

        var oldElements: [ServiceAddress: ServicePortRule] = [:]
        var newElements: [ServiceAddress: ServicePortRule] = [:]
        var removedChains: [String] = []
        for name in rules.keys.sorted() {
            let rule = rules[name]!
            guard let old = previous.rules[name] else {
                lines.append("add chain \(Self.table) \(name)")
                lines.append("add rule \(Self.table) \(name) \(body(of: rule))")
                for vip in rule.vips { newElements[rule.element(vip)] = rule }
                changed.insert(rule.service)
                continue
            }
            guard old != rule else { continue }
            changed.insert(rule.service)
            if old.backends != rule.backends || old.masquerade != rule.masquerade {
                lines.append("flush chain \(Self.table) \(name)")
                lines.append("add rule \(Self.table) \(name) \(body(of: rule))")
            }
            if old.vips != rule.vips {
                for vip in old.vips { oldElements[old.element(vip)] = old }
                for vip in rule.vips { newElements[rule.element(vip)] = rule }
            }
        }
        for name in previous.rules.keys.sorted() where rules[name] == nil {
            let old = previous.rules[name]!
            for vip in old.vips { oldElements[old.element(vip)] = old }
            removedChains.append(name)
            changed.insert(old.service)
        }

        // A key that keeps its chain is left alone; one that moves is deleted, then added.
        let deletions = oldElements.filter { key, old in newElements[key]?.chain != old.chain }
        let additions = newElements.filter { key, new in oldElements[key]?.chain != new.chain }
        for family in IPFamily.allCases {
            let keys = deletions.keys.filter { $0.vip.family == family }.sorted()
            guard !keys.isEmpty else { continue }
            let list = keys.map(Self.key).joined(separator: ", ")
            lines.append("delete element \(Self.table) services\(NFTName.family(family)) { \(list) }")
            lines.append("delete element \(Self.table) counters\(NFTName.family(family)) { \(list) }")
        }
        for family in IPFamily.allCases {
            let keys = additions.keys.filter { $0.vip.family == family }.sorted()
            guard !keys.isEmpty else { continue }
            lines.append("add element \(Self.table) services\(NFTName.family(family)) { \(keys.map { Self.verdictElement($0, additions[$0]!) }.joined(separator: ", ")) }")
            lines.append("add element \(Self.table) counters\(NFTName.family(family)) { \(keys.map { Self.counterElement($0, additions[$0]!) }.joined(separator: ", ")) }")
        }
        for name in removedChains { lines.append("delete chain \(Self.table) \(name)") }
        for service in removedServices { lines.append("delete counter \(Self.table) \(NFTName.counter(service: service))") }

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
                             counterServices: counterServices)
    }

    /// `table inet metalvip { ... }` with every object, sorted so the text is stable.
    func definition() -> String {
        let mark = Self.hex(masqueradeMark)
        let sortedRules = rules.values.sorted { $0.chain < $1.chain }
        var text = "table \(Self.table) {\n"
        for service in usableCounts.keys.sorted() {
            text += "\tcounter \(NFTName.counter(service: service)) {\n\t}\n"
        }
        for family in IPFamily.allCases {
            let suffix = NFTName.family(family)
            let type = family == .ipv4 ? "ipv4_addr" : "ipv6_addr"
            let elements = sortedRules.filter { $0.family == family }.flatMap { rule in rule.vips.map { (rule.element($0), rule) } }
                .sorted { $0.0 < $1.0 }
            text += "\tset vips\(suffix) {\n\t\ttype \(type)\n"
            let familyVIPs = vips.filter { $0.family == family }.sorted()
            if !familyVIPs.isEmpty { text += "\t\telements = { \(familyVIPs.map(\.description).joined(separator: ", ")) }\n" }
            text += "\t}\n"
            text += "\tmap services\(suffix) {\n\t\ttype \(type) . inet_proto . inet_service : verdict\n"
            if !elements.isEmpty { text += "\t\telements = { \(elements.map { Self.verdictElement($0.0, $0.1) }.joined(separator: ", ")) }\n" }
            text += "\t}\n"
            text += "\tmap counters\(suffix) {\n\t\ttype \(type) . inet_proto . inet_service : counter\n"
            if !elements.isEmpty { text += "\t\telements = { \(elements.map { Self.counterElement($0.0, $0.1) }.joined(separator: ", ")) }\n" }
            text += "\t}\n"
        }
        for rule in sortedRules {
            text += "\tchain \(rule.chain) {\n\t\t\(body(of: rule))\n\t}\n"
        }
        let lookup = "\t\tip daddr . meta l4proto . th dport vmap @services4\n\t\tip6 daddr . meta l4proto . th dport vmap @services6\n"
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
            \t\tcounter name ip daddr . meta l4proto . th dport map @counters4
            \t\tcounter name ip6 daddr . meta l4proto . th dport map @counters6
            \t}
            \tchain count-output {
            \t\ttype filter hook output priority mangle; policy accept;
            \t\tcounter name ip daddr . meta l4proto . th dport map @counters4
            \t\tcounter name ip6 daddr . meta l4proto . th dport map @counters6
            \t}
            \tchain count-replies {
            \t\ttype filter hook postrouting priority srcnat + 10; policy accept;
            \t\tcounter name ip saddr . meta l4proto . th sport map @counters4
            \t\tcounter name ip6 saddr . meta l4proto . th sport map @counters6
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

    /// One rule: (Cluster) mark for masquerade, then DNAT to a random backend. The protocol match comes first:
    /// nft needs it before a port rewrite.
    func body(of rule: ServicePortRule) -> String {
        let family = rule.family == .ipv4 ? "ip" : "ip6"
        let targets = rule.backends.enumerated().map { "\($0.offset) : \($0.element.address) . \($0.element.port)" }
        let mark = rule.masquerade ? "meta mark set meta mark | \(Self.hex(masqueradeMark)) " : ""
        return "\(mark)meta l4proto \(rule.protocol.rawValue.lowercased()) dnat \(family) to numgen random mod \(rule.backends.count) map { \(targets.joined(separator: ", ")) }"
    }

    static func key(_ address: ServiceAddress) -> String {
        "\(address.vip) . \(address.protocol.rawValue.lowercased()) . \(address.port)"
    }

    static func verdictElement(_ address: ServiceAddress, _ rule: ServicePortRule) -> String {
        "\(key(address)) : goto \(rule.chain)"
    }

    static func counterElement(_ address: ServiceAddress, _ rule: ServicePortRule) -> String {
        "\(key(address)) : \"\(NFTName.counter(service: rule.service))\""
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
