import VIPModel

/// The engine: which addresses the pools contain and who holds which. Owners are opaque strings ("namespace/name").
///
/// Each pool family is a dense ordinal space (see `OrdinalMap`); held ordinals live in an
/// `IntervalSet`, so finding the lowest free address is O(log runs) whatever the pool size or fill.
/// Sharable addresses are also indexed per sharing key, so sharing lookups never scan all owners.
/// Per-operation state is kept compact (paged holder ids, 32-byte owner records with interned
/// profiles, a wide-node interval tree) so cost stays flat as the space fills and outgrows the caches.
/// A value type: copy it to try a plan, keep the copy only if it works.
public struct AddressSpace: Sendable {
    /// One pool family: its ordinals, which are held, and which held ones may be shared under which key.
    private struct FamilySpace: Sendable {
        var map: OrdinalMap
        var used = IntervalSet()
        /// Held ordinals by the sharing key of their holders (all holders of one address share a key).
        var sharedByKey: [String: IntervalSet] = [:]
    }

    private struct Pool: Sendable {
        var definition: PoolDefinition
    }

    /// One piece of one pool in the address -> pool table.
    private struct LookupEntry: Sendable {
        var first: UInt128
        var last: UInt128
        var pool: Int
        var segment: Int
    }

    private enum Location {
        case outside
        case excluded(pool: Int)
        case usable(pool: Int, ordinal: UInt128)
    }

    /// Sorted by name.
    private var pools: [Pool] = []
    /// Pool `p`'s space for family slot `f` is at `p * 2 + f`: one flat array, read in place (see `space`).
    private var spaces: ContiguousArray<FamilySpace> = []
    private var poolIndex: [String: Int] = [:]
    /// Per family slot: disjoint pieces of every pool, sorted by first address.
    private var lookup: [[LookupEntry]] = [[], []]
    /// Per family slot: holders by address value.
    private var holders = [HolderMap(), HolderMap()]
    /// Owners by name and id, with what they hold.
    private var ownerTable = OwnerTable()
    private var profiles = ProfileTable()

    private static func slot(of family: IPFamily) -> Int { family == .ipv4 ? 0 : 1 }

    /// Reads one family space in place. A plain array read copies the struct, retaining every
    /// buffer it holds, which cost more than the lookup itself on the allocation path.
    @inline(__always)
    private func space<Result>(_ pool: Int, _ slot: Int, _ body: (borrowing FamilySpace) -> Result) -> Result {
        spaces.withUnsafeBufferPointer { body($0[pool * 2 + slot]) }
    }

    /// Pools are expected not to overlap (validated elsewhere). If they do, the pool first by name
    /// owns the overlap and the later pool simply does not contain it; duplicate names keep the first.
    public init(pools definitions: [PoolDefinition]) {
        let ordered = definitions.enumerated()
            .sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }
            .map(\.element)
        for definition in ordered where poolIndex[definition.name] == nil {
            poolIndex[definition.name] = pools.count
            pools.append(Pool(definition: definition))
        }
        var perPool = Array(repeating: [FamilySpace](), count: pools.count)
        for family in IPFamily.allCases {
            var claimed: [ClosedRange<UInt128>] = []
            var entries: [LookupEntry] = []
            for index in pools.indices {
                let definition = pools[index].definition
                let own = Self.normalize(definition.ranges.filter { $0.family == family }.map { $0.first.value...$0.last.value })
                let pieces = own.flatMap { Self.subtract(claimed, from: $0) }
                claimed = Self.normalize(claimed + own)
                let map = OrdinalMap(pieces: pieces, avoidBuggyIPs: family == .ipv4 && definition.avoidBuggyIPs)
                for (segment, piece) in map.segments.enumerated() {
                    entries.append(LookupEntry(first: piece.first, last: piece.last, pool: index, segment: segment))
                }
                perPool[index].append(FamilySpace(map: map))
            }
            lookup[Self.slot(of: family)] = entries.sorted { $0.first < $1.first }
        }
        spaces = ContiguousArray(perPool.joined())
    }

    /// Sorts and merges overlapping or adjacent ranges.
    private static func normalize(_ ranges: [ClosedRange<UInt128>]) -> [ClosedRange<UInt128>] {
        var merged: [ClosedRange<UInt128>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, last.upperBound == .max || range.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }

    /// The parts of `range` not covered by `claimed` (sorted, disjoint).
    private static func subtract(_ claimed: [ClosedRange<UInt128>], from range: ClosedRange<UInt128>) -> [ClosedRange<UInt128>] {
        var pieces: [ClosedRange<UInt128>] = []
        var cursor = range.lowerBound
        for taken in claimed where taken.upperBound >= cursor && taken.lowerBound <= range.upperBound {
            if taken.lowerBound > cursor { pieces.append(cursor...(taken.lowerBound - 1)) }
            if taken.upperBound >= range.upperBound { return pieces }
            cursor = taken.upperBound + 1
        }
        pieces.append(cursor...range.upperBound)
        return pieces
    }

    // MARK: Pools

    public var poolNames: [String] { pools.map(\.definition.name) }

    public func definition(ofPool name: String) -> PoolDefinition? {
        poolIndex[name].map { pools[$0].definition }
    }

    /// The pool whose usable addresses include `address` (nil when outside every pool or excluded by avoidBuggyIPs).
    public func pool(containing address: IPAddress) -> String? {
        guard case .usable(let pool, _) = locate(address) else { return nil }
        return pools[pool].definition.name
    }

    /// Families the pool's configured ranges cover (even if avoidBuggyIPs leaves a family empty).
    public func families(ofPool name: String) -> Set<IPFamily> {
        guard let index = poolIndex[name] else { return [] }
        return Set(pools[index].definition.ranges.map(\.family))
    }

    /// inUse counts distinct addresses; totals exclude avoidBuggyIPs exclusions; exact for a /64 or even ::/0.
    public func usage(ofPool name: String) -> PoolUsage? {
        guard let index = poolIndex[name] else { return nil }
        func family(_ family: IPFamily) -> FamilyUsage {
            space(index, Self.slot(of: family)) { FamilyUsage(total: $0.map.total, inUse: AddressCount($0.used.count)) }
        }
        return PoolUsage(ipv4: family(.ipv4), ipv6: family(.ipv6))
    }

    private func locate(_ address: IPAddress) -> Location {
        let slot = Self.slot(of: address.family)
        let value = address.value
        // Last entry starting at or below the address.
        var low = 0, high = lookup[slot].count
        while low < high {
            let mid = (low + high) / 2
            if lookup[slot][mid].first <= value { low = mid + 1 } else { high = mid }
        }
        guard low > 0, lookup[slot][low - 1].last >= value else { return .outside }
        let entry = lookup[slot][low - 1]
        guard let ordinal = space(entry.pool, slot, { $0.map.ordinal(of: value, inSegment: entry.segment) }) else {
            return .excluded(pool: entry.pool)
        }
        return .usable(pool: entry.pool, ordinal: ordinal)
    }

    /// Holders of `address` by owner id, in the order they took it.
    private func holderIDs(_ address: IPAddress) -> [Int32] {
        holders[Self.slot(of: address.family)].holders(at: address.value)
    }

    private func record(_ owner: String) -> OwnerRecord? {
        guard let id = ownerTable.id(of: owner) else { return nil }
        return ownerTable[id]
    }

    private func address(pool: Int, family: IPFamily, ordinal: UInt128) -> IPAddress {
        IPAddress(family: family, value: space(pool, Self.slot(of: family)) { $0.map.value(at: ordinal) })
    }

    // MARK: Queries

    /// Lowest address of the pool and family that is free, or held only by owners whose profiles are all compatible with `profile`. nil when none.
    /// Deterministic. Free-address lookup O(log n); shared candidates come from an index by sharing key
    /// and only those below the lowest free address are examined.
    public func lowestAvailable(inPool name: String, family: IPFamily, for profile: SharingProfile) -> IPAddress? {
        guard let pool = poolIndex[name] else { return nil }
        let slot = Self.slot(of: family)
        guard let lastOrdinal = space(pool, slot, { $0.map.lastOrdinal }) else { return nil }
        let free = space(pool, slot) { $0.used.lowestAbsent() }.flatMap { $0 <= lastOrdinal ? $0 : nil }
        if !profile.key.isEmpty, let candidates = space(pool, slot, { $0.sharedByKey[profile.key] }) {
            for run in candidates {
                var ordinal = run.lowerBound
                while true {
                    if let free, ordinal >= free { return address(pool: pool, family: family, ordinal: free) }
                    let candidate = address(pool: pool, family: family, ordinal: ordinal)
                    let ids = holderIDs(candidate)
                    if !ids.isEmpty, ids.allSatisfy({ profiles[ownerTable[$0].profile].isCompatible(with: profile) }) {
                        return candidate
                    }
                    if ordinal == run.upperBound { break }
                    ordinal += 1
                }
            }
        }
        return free.map { address(pool: pool, family: family, ordinal: $0) }
    }

    /// Why `owner` may not take `address` (nil when it may). Taking an address it already holds is allowed.
    /// If the owner's profile changes, the address it keeps in the other family must still be sharable too.
    public func checkAssign(_ address: IPAddress, to owner: String, profile: SharingProfile) -> AssignmentError? {
        check(address, ownerID: ownerTable.id(of: owner), profile: profile).error
    }

    /// The shared part of `checkAssign` and `assign`, taking the owner's id so its name is hashed once.
    private func check(_ address: IPAddress, ownerID: Int32?, profile: SharingProfile) -> (error: AssignmentError?, pool: Int, ordinal: UInt128) {
        let pool: Int, ordinal: UInt128
        switch locate(address) {
        case .outside: return (.outsidePools(address), 0, 0)
        case .excluded(let index): return (.excluded(address, pool: pools[index].definition.name), 0, 0)
        case .usable(let index, let found): (pool, ordinal) = (index, found)
        }
        // A free ordinal has no holders: skip the holder lookup on the common allocation path.
        if space(pool, Self.slot(of: address.family), { $0.used.contains(ordinal) }),
           let error = conflict(at: address, for: ownerID, profile: profile) {
            return (error, pool, ordinal)
        }
        if let ownerID, profiles.id(of: profile) != ownerTable[ownerID].profile,
           let kept = ownerTable[ownerID][address.family.other],
           let error = conflict(at: kept, for: ownerID, profile: profile) {
            return (error, pool, ordinal)
        }
        return (nil, pool, ordinal)
    }

    private func conflict(at address: IPAddress, for ownerID: Int32?, profile: SharingProfile) -> AssignmentError? {
        var blockers: [String] = []
        var reason: SharingProfile.Conflict?
        for other in holderIDs(address) where other != ownerID {
            guard let found = profile.conflict(with: profiles[ownerTable[other].profile]) else { continue }
            blockers.append(ownerTable.name(of: other) ?? "")
            if reason == nil { reason = found }
        }
        guard let reason else { return nil }
        return .inUse(address, by: blockers.sorted(), reason: reason.description)
    }

    public func addresses(of owner: String) -> [IPAddress] {
        record(owner)?.addresses ?? []
    }

    public func owners(of address: IPAddress) -> [String] {
        holderIDs(address).compactMap { ownerTable.name(of: $0) }.sorted()
    }

    public func profile(of owner: String) -> SharingProfile? {
        record(owner).map { profiles[$0.profile] }
    }

    /// Every owner holding at least one address, sorted.
    public var ownerNames: [String] { ownerTable.names.sorted() }

    // MARK: Mutation

    /// Gives `address` to `owner` under `profile`. An owner holds at most one address per family, so
    /// this replaces any other address it held in the same family; the profile applies to all its addresses.
    public mutating func assign(_ address: IPAddress, to owner: String, profile: SharingProfile) throws(AssignmentError) {
        let ownerHash = owner.hashValue
        let existingID = ownerTable.id(of: owner, hash: ownerHash)
        let (error, pool, ordinal) = check(address, ownerID: existingID, profile: profile)
        if let error { throw error }
        let id: Int32
        if let existingID {
            id = existingID
            let previous = ownerTable[id]
            if profiles.id(of: profile) == previous.profile && previous[address.family] == address { return }
            // Re-attach everything under the new profile: simple, and keeps the sharing index exact.
            let previousKey = profiles.key(of: previous.profile)
            for held in previous.addresses { detach(id, from: held, key: previousKey) }
            var updated = OwnerRecord(profile: profiles.retain(profile))
            profiles.release(previous.profile)
            updated[address.family.other] = previous[address.family.other]
            updated[address.family] = address
            ownerTable[id] = updated
            if let kept = updated[address.family.other], case .usable(let keptPool, let keptOrdinal) = locate(kept) {
                attach(id, to: kept, pool: keptPool, ordinal: keptOrdinal, key: profile.key)
            }
        } else {
            var record = OwnerRecord(profile: profiles.retain(profile))
            record[address.family] = address
            id = ownerTable.insert(owner, hash: ownerHash, record: record)
        }
        attach(id, to: address, pool: pool, ordinal: ordinal, key: profile.key)
    }

    /// Frees everything `owner` holds; an address becomes free when its last owner leaves.
    public mutating func release(owner: String) {
        guard let (id, record) = ownerTable.remove(owner) else { return }
        let key = profiles.key(of: record.profile)
        for family in IPFamily.allCases {
            if let held = record[family] { detach(id, from: held, key: key) }
        }
        profiles.release(record.profile)
    }

    private mutating func attach(_ id: Int32, to address: IPAddress, pool: Int, ordinal: UInt128, key: String) {
        let slot = Self.slot(of: address.family)
        // Only the first holder marks the ordinal used.
        guard holders[slot].add(id, at: address.value) else { return }
        spaces[pool * 2 + slot].used.insert(ordinal)
        if !key.isEmpty {
            spaces[pool * 2 + slot].sharedByKey[key, default: IntervalSet()].insert(ordinal)
        }
    }

    private mutating func detach(_ id: Int32, from address: IPAddress, key: String) {
        let slot = Self.slot(of: address.family)
        // The ordinal is freed only when its last holder leaves.
        guard holders[slot].remove(id, at: address.value) else { return }
        guard case .usable(let pool, let ordinal) = locate(address) else { return }
        spaces[pool * 2 + slot].used.remove(ordinal)
        if !key.isEmpty {
            spaces[pool * 2 + slot].sharedByKey[key]?.remove(ordinal)
            if spaces[pool * 2 + slot].sharedByKey[key]?.isEmpty == true {
                spaces[pool * 2 + slot].sharedByKey[key] = nil
            }
        }
    }
}

private extension IPFamily {
    var other: IPFamily { self == .ipv4 ? .ipv6 : .ipv4 }
}
