extension AddressSpace {
    /// Owner name -> small integer id, the only place owner names are hashed.
    ///
    /// Open addressing with tombstones and stored hashes: removing an owner never rehashes (and so
    /// never dereferences) other owners' names, which is what made `Dictionary<String, _>` churn
    /// cache-miss bound in large spaces. Growth rehashes from the stored hashes.
    struct OwnerTable: Sendable {
        private struct Slot: Sendable {
            var hash: Int
            /// `empty`, `tombstone` or an owner id.
            var id: Int32
        }

        private static let empty: Int32 = -1
        private static let tombstone: Int32 = -2

        private var slots = ContiguousArray(repeating: Slot(hash: 0, id: OwnerTable.empty), count: 16)
        /// Live plus tombstone slots; drives rehashing.
        private var occupied = 0
        private(set) var count = 0
        /// Indexed by id; nil for recycled ids.
        private(set) var names: ContiguousArray<String?> = []
        private var freeIDs: [Int32] = []

        init() {}

        func id(of name: String) -> Int32? {
            id(of: name, hash: name.hashValue)
        }

        /// `hash` must be `name.hashValue`; lets a lookup followed by an insert hash the name once.
        func id(of name: String, hash: Int) -> Int32? {
            let mask = slots.count - 1
            var index = hash & mask
            while true {
                let slot = slots[index]
                if slot.id == Self.empty { return nil }
                if slot.id >= 0 && slot.hash == hash && names[Int(slot.id)] == name { return slot.id }
                index = (index + 1) & mask
            }
        }

        /// Adds `name`, which must not be present, and returns its new id.
        mutating func insert(_ name: String, hash: Int) -> Int32 {
            if (occupied + 1) * 4 > slots.count * 3 { rehash() }
            let id: Int32
            if let recycled = freeIDs.popLast() {
                id = recycled
                names[Int(id)] = name
            } else {
                id = Int32(names.count)
                names.append(name)
            }
            let mask = slots.count - 1
            var index = hash & mask
            while slots[index].id >= 0 { index = (index + 1) & mask }
            if slots[index].id == Self.empty { occupied += 1 }
            slots[index] = Slot(hash: hash, id: id)
            count += 1
            return id
        }

        /// Removes `name`; returns the id it had. The id may be handed out again by a later insert.
        mutating func remove(_ name: String) -> Int32? {
            let hash = name.hashValue
            let mask = slots.count - 1
            var index = hash & mask
            while true {
                let slot = slots[index]
                if slot.id == Self.empty { return nil }
                if slot.id >= 0 && slot.hash == hash && names[Int(slot.id)] == name {
                    slots[index].id = Self.tombstone
                    names[Int(slot.id)] = nil
                    freeIDs.append(slot.id)
                    count -= 1
                    return slot.id
                }
                index = (index + 1) & mask
            }
        }

        /// Rebuilds without tombstones, doubling only when live entries need the room.
        private mutating func rehash() {
            var capacity = slots.count
            while (count + 1) * 2 > capacity { capacity *= 2 }
            var fresh = ContiguousArray(repeating: Slot(hash: 0, id: Self.empty), count: capacity)
            let mask = capacity - 1
            for slot in slots where slot.id >= 0 {
                var index = slot.hash & mask
                while fresh[index].id != Self.empty { index = (index + 1) & mask }
                fresh[index] = slot
            }
            slots = fresh
            occupied = count
        }
    }
}
