extension AddressSpace {
    /// Owners by name and by small integer id, with their records; the only place owner names are hashed.
    ///
    /// Open addressing over 8-byte slots (hash tag + id) with tombstones: a lookup reads one or two
    /// cache lines and compares a name only on a tag match, and removing an owner never rehashes (so
    /// never dereferences) other owners' names. An owner's name and record share one entry, so
    /// releasing it touches one place. Growth rehashes from the stored tags.
    struct OwnerTable: Sendable {
        private struct Slot: Sendable {
            /// High half of the name's hash; its low bits pick the home slot.
            var tag: UInt32
            /// `empty`, `tombstone` or an owner id.
            var id: Int32
        }

        private struct Entry: Sendable {
            var record: OwnerRecord
            /// nil for recycled ids.
            var name: String?
        }

        private static let empty: Int32 = -1
        private static let tombstone: Int32 = -2

        private var slots = ContiguousArray(repeating: Slot(tag: 0, id: OwnerTable.empty), count: 16)
        /// Live plus tombstone slots; drives rehashing.
        private var occupied = 0
        private(set) var count = 0
        /// Indexed by id.
        private var entries: ContiguousArray<Entry> = []
        private var freeIDs: [Int32] = []

        init() {}

        private static func tag(_ hash: Int) -> UInt32 { UInt32(truncatingIfNeeded: hash >> 32) }

        func id(of name: String) -> Int32? {
            id(of: name, hash: name.hashValue)
        }

        /// `hash` must be `name.hashValue`; lets a lookup followed by an insert hash the name once.
        func id(of name: String, hash: Int) -> Int32? {
            let tag = Self.tag(hash)
            let mask = slots.count - 1
            var index = Int(tag) & mask
            while true {
                let slot = slots[index]
                if slot.id == Self.empty { return nil }
                if slot.tag == tag && slot.id >= 0 && entries[Int(slot.id)].name == name { return slot.id }
                index = (index + 1) & mask
            }
        }

        /// Name of a live owner id.
        func name(of id: Int32) -> String? { entries[Int(id)].name }

        /// Record of a live owner id.
        subscript(id: Int32) -> OwnerRecord {
            get { entries[Int(id)].record }
            set { entries[Int(id)].record = newValue }
        }

        /// Names of every owner, unordered.
        var names: [String] { entries.compactMap(\.name) }

        /// Adds `name`, which must not be present, and returns its new id.
        mutating func insert(_ name: String, hash: Int, record: OwnerRecord) -> Int32 {
            if (occupied + 1) * 4 > slots.count * 3 { rehash() }
            let id: Int32
            if let recycled = freeIDs.popLast() {
                id = recycled
                entries[Int(id)] = Entry(record: record, name: name)
            } else {
                id = Int32(entries.count)
                entries.append(Entry(record: record, name: name))
            }
            let tag = Self.tag(hash)
            let mask = slots.count - 1
            var index = Int(tag) & mask
            while slots[index].id >= 0 { index = (index + 1) & mask }
            if slots[index].id == Self.empty { occupied += 1 }
            slots[index] = Slot(tag: tag, id: id)
            count += 1
            return id
        }

        /// Removes `name`; returns the id and record it had. The id may be handed out again by a later insert.
        mutating func remove(_ name: String) -> (id: Int32, record: OwnerRecord)? {
            let tag = Self.tag(name.hashValue)
            let mask = slots.count - 1
            var index = Int(tag) & mask
            while true {
                let slot = slots[index]
                if slot.id == Self.empty { return nil }
                if slot.tag == tag && slot.id >= 0 && entries[Int(slot.id)].name == name {
                    slots[index].id = Self.tombstone
                    entries[Int(slot.id)].name = nil
                    freeIDs.append(slot.id)
                    count -= 1
                    return (slot.id, entries[Int(slot.id)].record)
                }
                index = (index + 1) & mask
            }
        }

        /// Rebuilds without tombstones, doubling only when live entries need the room.
        private mutating func rehash() {
            var capacity = slots.count
            while (count + 1) * 2 > capacity { capacity *= 2 }
            var fresh = ContiguousArray(repeating: Slot(tag: 0, id: Self.empty), count: capacity)
            let mask = capacity - 1
            for slot in slots where slot.id >= 0 {
                var index = Int(slot.tag) & mask
                while fresh[index].id != Self.empty { index = (index + 1) & mask }
                fresh[index] = slot
            }
            slots = fresh
            occupied = count
        }
    }
}
