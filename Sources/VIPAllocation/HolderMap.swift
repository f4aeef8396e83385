extension AddressSpace {
    /// Who holds each held address of one family, by owner id.
    ///
    /// Addresses are grouped in aligned pages of 32 whose holder ids sit together in one flat array, so
    /// neighbouring addresses (what lowest-free allocation hands out) share cache lines and the page
    /// index stays small. Almost every address has one holder; further sharers live in a side table.
    struct HolderMap: Sendable {
        private static let pageShift = 5
        private static let pageSize = 1 << pageShift
        private static let vacant: Int32 = -1

        /// One open-addressing slot of the page index: page number -> page.
        private struct Slot: Sendable {
            var page: UInt128
            /// Page number in `ids`, or `vacant` for an empty slot.
            var index: Int32
            /// Held addresses in the page; the page is recycled at zero.
            var held: Int32
        }

        private var slots = ContiguousArray(repeating: Slot(page: 0, index: HolderMap.vacant, held: 0), count: 16)
        private var pageCount = 0
        /// First holder of every address, `pageSize` per page; `vacant` when free.
        private var ids: ContiguousArray<Int32> = []
        private var freePages: [Int32] = []
        /// Holders after the first, in arrival order, for addresses with more than one.
        private var sharers: [UInt128: [Int32]] = [:]

        init() {}

        /// First holder of `address`, nil when nobody holds it.
        func primary(at address: UInt128) -> Int32? {
            guard let slot = find(address >> Self.pageShift) else { return nil }
            let id = ids[entry(slot, address)]
            return id == Self.vacant ? nil : id
        }

        /// Every holder in the order they arrived; empty when free.
        func holders(at address: UInt128) -> [Int32] {
            guard let first = primary(at: address) else { return [] }
            return [first] + (sharers.isEmpty ? [] : sharers[address, default: []])
        }

        /// Adds `id` as a holder; returns true when the address was free before.
        mutating func add(_ id: Int32, at address: UInt128) -> Bool {
            let page = address >> Self.pageShift
            let slot = find(page) ?? insertPage(page)
            let index = entry(slot, address)
            let first = ids[index]
            if first == Self.vacant {
                ids[index] = id
                slots[slot].held += 1
                return true
            }
            if first != id && !(sharers[address]?.contains(id) ?? false) {
                sharers[address, default: []].append(id)
            }
            return false
        }

        /// Drops `id` as a holder; returns true when that left the address free.
        mutating func remove(_ id: Int32, at address: UInt128) -> Bool {
            guard let slot = find(address >> Self.pageShift) else { return false }
            let index = entry(slot, address)
            let first = ids[index]
            if first == Self.vacant { return false }
            if !sharers.isEmpty, var others = sharers[address] {
                if first == id {
                    ids[index] = others.removeFirst()
                } else {
                    others.removeAll { $0 == id }
                }
                sharers[address] = others.isEmpty ? nil : others
                return false
            }
            guard first == id else { return false }
            ids[index] = Self.vacant
            slots[slot].held -= 1
            if slots[slot].held == 0 { removePage(at: slot) }
            return true
        }

        // MARK: Page index

        private func entry(_ slot: Int, _ address: UInt128) -> Int {
            Int(slots[slot].index) << Self.pageShift | Int(truncatingIfNeeded: address) & (Self.pageSize - 1)
        }

        /// Fixed mixing (no per-process seed needed: keys are page numbers, not user strings).
        private static func home(_ page: UInt128, mask: Int) -> Int {
            var x = UInt64(truncatingIfNeeded: page) ^ (UInt64(truncatingIfNeeded: page >> 64) &* 0x9E37_79B9_7F4A_7C15)
            x ^= x >> 33
            x &*= 0xFF51_AFD7_ED55_8CCD
            x ^= x >> 33
            return Int(truncatingIfNeeded: x) & mask
        }

        private func find(_ page: UInt128) -> Int? {
            let mask = slots.count - 1
            var slot = Self.home(page, mask: mask)
            while true {
                let candidate = slots[slot]
                if candidate.index == Self.vacant { return nil }
                if candidate.page == page { return slot }
                slot = (slot + 1) & mask
            }
        }

        private mutating func insertPage(_ page: UInt128) -> Int {
            if (pageCount + 1) * 2 > slots.count { grow() }
            let index: Int32
            if let recycled = freePages.popLast() {
                index = recycled
            } else {
                index = Int32(ids.count >> Self.pageShift)
                ids.append(contentsOf: repeatElement(Self.vacant, count: Self.pageSize))
            }
            let mask = slots.count - 1
            var slot = Self.home(page, mask: mask)
            while slots[slot].index != Self.vacant { slot = (slot + 1) & mask }
            slots[slot] = Slot(page: page, index: index, held: 0)
            pageCount += 1
            return slot
        }

        /// Frees the page at `slot` and closes the gap by shifting back later entries of its probe run.
        private mutating func removePage(at slot: Int) {
            freePages.append(slots[slot].index)
            pageCount -= 1
            let mask = slots.count - 1
            var hole = slot, next = slot
            while true {
                next = (next + 1) & mask
                if slots[next].index == Self.vacant { break }
                let home = Self.home(slots[next].page, mask: mask)
                // Move it back unless its home lies cyclically in (hole, next].
                let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
                if !stays {
                    slots[hole] = slots[next]
                    hole = next
                }
            }
            slots[hole].index = Self.vacant
        }

        private mutating func grow() {
            let old = slots
            slots = ContiguousArray(repeating: Slot(page: 0, index: Self.vacant, held: 0), count: old.count * 2)
            let mask = slots.count - 1
            for entry in old where entry.index != Self.vacant {
                var slot = Self.home(entry.page, mask: mask)
                while slots[slot].index != Self.vacant { slot = (slot + 1) & mask }
                slots[slot] = entry
            }
        }
    }
}
