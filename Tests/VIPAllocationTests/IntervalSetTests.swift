import Testing
import VIPAllocation
import VIPPacket  // SplitMix64: failures reproduce exactly


@Suite struct IntervalSetTests {
    /// The runs a plain set of values should produce.
    private func runs(of model: Set<UInt128>) -> [ClosedRange<UInt128>] {
        var result: [ClosedRange<UInt128>] = []
        for value in model.sorted() {
            if let last = result.last, last.upperBound + 1 == value {
                result[result.count - 1] = last.lowerBound...value
            } else {
                result.append(value...value)
            }
        }
        return result
    }

    @Test(arguments: [(UInt64(1), UInt128(64)), (2, 300), (3, 4096)])
    func matchesSetModel(seed: UInt64, universe: UInt128) {
        var rng = SplitMix64(seed: seed)
        var set = IntervalSet()
        var model = Set<UInt128>()
        for step in 0..<6_000 {
            let value = UInt128(rng.next() % UInt64(universe))
            switch rng.next() % 10 {
            case 0..<5:
                let inserted = set.insert(value)
                #expect(inserted == model.insert(value).inserted)
            case 5..<8:
                let removed = set.remove(value)
                #expect(removed == (model.remove(value) != nil))
            case 8:
                // Lowest free from a random lower bound.
                let expected = (value...).first { !model.contains($0) }
                #expect(set.lowestAbsent(atOrAbove: value) == expected)
            default:
                #expect(set.contains(value) == model.contains(value))
            }
            #expect(set.count == UInt128(model.count))
            #expect(set.lowestAbsent() == (UInt128(0)...).first { !model.contains($0) })
            if step % 97 == 0 {
                let expected = runs(of: model)
                #expect(set.intervals == expected)
                #expect(set.intervalCount == expected.count)
            }
        }
        #expect(set.intervals == runs(of: model))
    }

    /// Enough runs for a tree several levels deep, so node splits, merges and borrowing all happen,
    /// including long stretches of deletions at the low end (the allocation frontier).
    @Test(arguments: [(UInt64(4), UInt128(60_000), UInt64(6)), (5, 60_000, 3), (6, 2_000, 5)])
    func matchesSetModelAcrossManyNodes(seed: UInt64, universe: UInt128, insertTenths: UInt64) {
        var rng = SplitMix64(seed: seed)
        var set = IntervalSet()
        var model = Set<UInt128>()
        for step in 0..<40_000 {
            let value = UInt128(rng.next() % UInt64(universe))
            if rng.next() % 10 < insertTenths {
                let inserted = set.insert(value)
                #expect(inserted == model.insert(value).inserted)
            } else {
                let removed = set.remove(value)
                #expect(removed == (model.remove(value) != nil))
            }
            if step % 4_000 == 0 {
                let expected = runs(of: model)
                #expect(set.intervals == expected)
                #expect(set.intervalCount == expected.count)
                #expect(set.lowestAbsent() == (UInt128(0)...).first { !model.contains($0) })
            }
        }
        #expect(set.count == UInt128(model.count))
        // Fill from the bottom, as lowest-free allocation does, then drain.
        for _ in 0..<2_000 {
            let free = set.lowestAbsent()!
            #expect(!model.contains(free))
            set.insert(free)
            model.insert(free)
        }
        #expect(set.intervals == runs(of: model))
        var removedAll = true
        for value in model.sorted() { removedAll = set.remove(value) && removedAll }
        #expect(removedAll)
        #expect(set.isEmpty)
        #expect(set.intervalCount == 0)
    }

    @Test func extremesDoNotOverflow() {
        var set = IntervalSet()
        var changed = [set.insert(.max), set.insert(.max - 1)]
        #expect(set.lowestAbsent(atOrAbove: .max - 1) == nil)
        #expect(set.lowestAbsent(atOrAbove: .max - 5) == UInt128.max - 5)
        changed.append(set.insert(0))
        #expect(set.lowestAbsent() == 1)
        #expect(set.intervals == [0...0, (UInt128.max - 1)...UInt128.max])
        changed.append(set.remove(.max))
        #expect(set.lowestAbsent(atOrAbove: .max - 1) == UInt128.max)
        let removedTwice = set.remove(.max)
        changed += [set.remove(0), set.remove(.max - 1)]
        #expect(changed == [true, true, true, true, true, true])
        #expect(!removedTwice)
        #expect(set.isEmpty)
        #expect(set.count == 0)
    }

    @Test func splitsAndMergesRuns() {
        var set = IntervalSet()
        for value in UInt128(10)...20 { set.insert(value) }
        #expect(set.intervals == [10...20])
        set.remove(15)
        #expect(set.intervals == [10...14, 16...20])
        #expect(set.lowestAbsent(atOrAbove: 10) == 15)
        set.insert(15)
        #expect(set.intervals == [10...20])
        #expect(set.intervalCount == 1)
        set.remove(10)
        set.remove(20)
        #expect(set.intervals == [11...19])
        #expect(set.lowestAbsent() == 0)
        #expect(set.lowestAbsent(atOrAbove: 11) == 20)
    }

    @Test func copiesAreIndependent() {
        var a = IntervalSet()
        a.insert(1)
        var b = a
        b.insert(2)
        a.remove(1)
        #expect(a.isEmpty)
        #expect(b.intervals == [1...2])
    }
}
