import VIPModel

/// Checks that need more than one document: what a batch would leave in the store must still make sense.
/// A multi-document apply is all or nothing, so every check runs before anything is written.
public enum ConfigValidator {
    /// Where an object that a batch document is checked against lives.
    enum Place: Hashable, CustomStringConvertible {
        case batch(DocumentOrigin)
        case store

        var description: String {
            switch self {
            case .batch(let origin): "\(origin)"
            case .store: "the store"
            }
        }
    }

    /// - Parameters:
    ///   - batch: the objects about to be applied, in file order.
    ///   - existingPools: the pools in the store now.
    public static func validate(_ batch: [ManifestObject], existingPools: [IPAddressPool]) throws(ManifestError) {
        var seen: [ObjectKey: DocumentOrigin] = [:]
        for object in batch {
            if let first = seen[object.key] {
                throw ManifestError(origin: object.origin, object: object.label, field: FieldError(
                    path: "metadata.name", message: "\(object.key) is also defined in \(first)"))
            }
            seen[object.key] = object.origin
        }

        // The pool set after the apply: batch pools replace stored ones of the same key.
        var pools: [(pool: IPAddressPool, place: Place, object: ManifestObject?)] = []
        let batchPoolKeys = Set(batch.compactMap { object -> ObjectKey? in
            if case .ipAddressPool = object.resource { return object.key }
            return nil
        })
        for pool in existingPools where !batchPoolKeys.contains(ObjectKey(.ipAddressPool, namespace: pool.meta.namespace, name: pool.name)) {
            pools.append((pool, .store, nil))
        }
        for object in batch {
            if case .ipAddressPool(let pool) = object.resource { pools.append((pool, .batch(object.origin), object)) }
        }

        // Pools are referred to by name alone (the address-pool annotation), so a name means one pool.
        var byName: [String: Int] = [:]
        for (index, entry) in pools.enumerated() {
            if let other = byName[entry.pool.name], let object = entry.object ?? pools[other].object {
                let clash = entry.object == nil ? entry : pools[other]
                throw ManifestError(origin: object.origin, object: object.label, field: FieldError(
                    path: "metadata.name",
                    message: "pool name \"\(entry.pool.name)\" is already used in namespace \"\(clash.pool.meta.namespace)\" (\(clash.place))"))
            }
            byName[entry.pool.name] = index
        }

        // Overlaps: sort every range once; only neighbours can overlap first.
        struct Slot { var range: AddressRange; var pool: Int; var index: Int }
        var slots: [Slot] = []
        for (poolIndex, entry) in pools.enumerated() {
            for (rangeIndex, range) in entry.pool.ranges.enumerated() {
                slots.append(Slot(range: range, pool: poolIndex, index: rangeIndex))
            }
        }
        slots.sort { ($0.range.first, $0.range.last) < ($1.range.first, $1.range.last) }
        var widest: Slot?
        for slot in slots {
            if let previous = widest, previous.range.overlaps(slot.range), previous.pool != slot.pool {
                let (blamed, other) = pools[slot.pool].object != nil ? (slot, previous) : (previous, slot)
                if let object = pools[blamed.pool].object {
                    let otherEntry = pools[other.pool]
                    throw ManifestError(origin: object.origin, object: object.label, field: FieldError(
                        path: "spec.addresses[\(blamed.index)]",
                        message: "\(pools[blamed.pool].pool.addressTexts[blamed.index]) overlaps \(otherEntry.pool.addressTexts[other.index]) of pool \"\(otherEntry.pool.name)\" (\(otherEntry.place))"))
                }
            }
            if widest == nil || widest!.range.family != slot.range.family || widest!.range.last < slot.range.last {
                widest = slot
            }
        }

        let poolNames = Set(pools.map(\.pool.name))
        for object in batch {
            guard case .l2Advertisement(let advertisement) = object.resource else { continue }
            for (index, name) in advertisement.ipAddressPools.enumerated() where !poolNames.contains(name) {
                throw ManifestError(origin: object.origin, object: object.label, field: FieldError(
                    path: "spec.ipAddressPools[\(index)]",
                    message: "unknown pool \"\(name)\": no IPAddressPool of that name in this apply or in the store"))
            }
        }
    }
}
