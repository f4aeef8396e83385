/// A set of `UInt128` values kept as maximal disjoint intervals (runs) in a B+ tree, so a pool's used
/// ordinals cost memory and time in the number of *runs*, never in the pool size.
///
/// Wide nodes keep the tree three or four levels deep for tens of thousands of runs, so a lookup
/// touches a few cache lines instead of the dozens of scattered nodes a binary tree needs. Nodes are
/// fixed-size slices of a few flat arrays and link by index: no per-node allocation or ARC traffic,
/// and copying the set copies only array references (copy-on-write).
public struct IntervalSet: Sendable, Sequence {
    /// Runs per leaf: a leaf's starts fill eight cache lines, a binary search touches about four.
    private static let leafOrder = 32
    /// Children per inner node; at most `leafOrder`, which `countNotAbove` relies on.
    private static let innerOrder = 32
    private static let none: Int32 = -1

    // Leaf `n` owns slots `n * leafOrder ..< n * leafOrder + leafCounts[n]` of `starts` and `ends`.
    private var starts: ContiguousArray<UInt128> = []
    private var ends: ContiguousArray<UInt128> = []
    private var leafCounts: ContiguousArray<Int32> = []
    /// Next leaf in value order (`none` for the last); links free leaves too.
    private var leafNext: ContiguousArray<Int32> = []
    private var freeLeaf: Int32 = IntervalSet.none

    // Inner node `n`: child `i` is `children[n * innerOrder + i]`, `minima[...]` the lowest start under it.
    private var minima: ContiguousArray<UInt128> = []
    private var children: ContiguousArray<Int32> = []
    private var innerCounts: ContiguousArray<Int32> = []
    /// Free inner nodes, linked through their first child slot.
    private var freeInner: Int32 = IntervalSet.none

    private var root: Int32 = IntervalSet.none
    /// Leftmost leaf: merges always fold a right node into its left neighbour, so it lives until the set empties.
    private var firstLeaf: Int32 = IntervalSet.none
    /// Inner levels above the leaves; 0 when the root is a leaf.
    private var height = 0

    /// Number of values in the set.
    public private(set) var count: UInt128 = 0
    /// Number of maximal runs: a measure of fragmentation.
    public private(set) var intervalCount: Int = 0

    public init() {}

    public var isEmpty: Bool { root == IntervalSet.none }

    /// A run's place: leaf and index within it.
    private struct Position {
        var leaf: Int
        var index: Int
        var slot: Int { leaf * IntervalSet.leafOrder + index }
    }

    public func contains(_ value: UInt128) -> Bool {
        guard let run = floorRun(value) else { return false }
        return ends[run.slot] >= value
    }

    /// Lowest value `>= lowerBound` that is not in the set; nil only when every value from there
    /// up to `UInt128.max` is present. Because runs are maximal, it is either `lowerBound` or the
    /// value right after the run covering it.
    public func lowestAbsent(atOrAbove lowerBound: UInt128 = 0) -> UInt128? {
        // The allocator's question: the first run answers it without a descent.
        let run: Position
        if lowerBound == 0 {
            guard let first = firstRun(), starts[first.slot] == 0 else { return 0 }
            run = first
        } else {
            guard let found = floorRun(lowerBound) else { return lowerBound }
            run = found
        }
        let end = ends[run.slot]
        if end < lowerBound { return lowerBound }
        return end == .max ? nil : end + 1
    }

    /// Adds `value`; returns false if it was already present.
    @discardableResult
    public mutating func insert(_ value: UInt128) -> Bool {
        let below = floorRun(value)
        if let below, ends[below.slot] >= value { return false }
        count += 1
        let above: Position?
        if value == .max { above = nil } else if let below { above = successor(of: below) } else { above = firstRun() }
        let joinsBelow = below.map { ends[$0.slot] &+ 1 == value } ?? false
        let joinsAbove = above.map { starts[$0.slot] == value + 1 } ?? false
        switch (joinsBelow, joinsAbove) {
        case (true, true):
            // Bridges two runs: extend the lower one and drop the upper.
            let upper = above!
            let upperStart = starts[upper.slot]
            ends[below!.slot] = ends[upper.slot]
            deleteRun(at: upper, start: upperStart)
        case (true, false):
            ends[below!.slot] = value
        case (false, true):
            // Moving a start down keeps the order: nothing lies between `below` and `value`.
            setStart(of: above!, to: value)
        case (false, false):
            insertRun(start: value, end: value, after: below)
        }
        return true
    }

    /// Removes `value`; returns false if it was not present.
    @discardableResult
    public mutating func remove(_ value: UInt128) -> Bool {
        guard let run = floorRun(value) else { return false }
        let (start, end) = (starts[run.slot], ends[run.slot])
        guard end >= value else { return false }
        count -= 1
        if start == value && end == value {
            deleteRun(at: run, start: start)
        } else if start == value {
            setStart(of: run, to: value + 1)
        } else if end == value {
            ends[run.slot] = value - 1
        } else {
            ends[run.slot] = value - 1
            insertRun(start: value + 1, end: end, after: run)
        }
        return true
    }

    /// The runs in ascending order.
    public var intervals: [ClosedRange<UInt128>] { Array(self) }

    public func makeIterator() -> Iterator {
        Iterator(set: self)
    }

    /// Walks the leaves left to right; holds its own copy of the (copy-on-write) storage.
    public struct Iterator: IteratorProtocol {
        private let set: IntervalSet
        private var position: Position?

        fileprivate init(set: IntervalSet) {
            self.set = set
            position = set.firstRun()
        }

        public mutating func next() -> ClosedRange<UInt128>? {
            guard let current = position else { return nil }
            position = set.successor(of: current)
            return set.starts[current.slot]...set.ends[current.slot]
        }
    }

    // MARK: Lookups

    /// The run with the largest start `<= value`.
    private func floorRun(_ value: UInt128) -> Position? {
        guard root != IntervalSet.none else { return nil }
        // Lowest-free allocation works at the low end: try the leftmost leaf before descending.
        var node = Int(firstLeaf)
        let next = leafNext[node]
        if next != IntervalSet.none && value >= starts[Int(next) * Self.leafOrder] {
            node = Int(root)
            for _ in 0..<height {
                node = Int(children[childIndex(for: value, in: node) + node * Self.innerOrder])
            }
        }
        // Last start <= value in the leaf; only the leftmost leaf can have none.
        let count = Int(leafCounts[node])
        let below = starts.withUnsafeBufferPointer { Self.countNotAbove(value, in: $0, from: node * Self.leafOrder, count: count) }
        return below == 0 ? nil : Position(leaf: node, index: below - 1)
    }

    /// Index of the child of inner node `node` whose subtree holds the floor of `value`.
    private func childIndex(for value: UInt128, in node: Int) -> Int {
        let count = Int(innerCounts[node])
        // Child 0 takes everything below child 1's minimum.
        return minima.withUnsafeBufferPointer { Self.countNotAbove(value, in: $0, from: node * Self.innerOrder + 1, count: count - 1) }
    }

    /// How many of the sorted `keys[from ..< from + count]` are `<= value`, for a range inside one node.
    ///
    /// Fixed power-of-two steps with selects instead of branches: a data-dependent binary search
    /// mispredicts about every other step, which dominated lookups in deep trees.
    @inline(__always)
    private static func countNotAbove(_ value: UInt128, in keys: UnsafeBufferPointer<UInt128>, from: Int, count: Int) -> Int {
        guard count > 0 else { return 0 }
        var below = 0
        var step = Self.leafOrder
        while step > 0 {
            // Probes past `count` read the last key and are never taken.
            let probe = below + step
            let inRange = probe <= count
            let notAbove = keys[from + Swift.min(probe, count) - 1] <= value
            below = inRange && notAbove ? probe : below
            step >>= 1
        }
        return below
    }

    private func firstRun() -> Position? {
        firstLeaf == IntervalSet.none ? nil : Position(leaf: Int(firstLeaf), index: 0)
    }

    private func successor(of run: Position) -> Position? {
        if run.index + 1 < Int(leafCounts[run.leaf]) { return Position(leaf: run.leaf, index: run.index + 1) }
        let next = leafNext[run.leaf]
        return next == IntervalSet.none ? nil : Position(leaf: Int(next), index: 0)
    }

    /// Lowest start in the subtree of `node`, which sits `level` levels above the leaves.
    private func minimum(of node: Int, level: Int) -> UInt128 {
        level == 0 ? starts[node * Self.leafOrder] : minima[node * Self.innerOrder]
    }

    private func size(of node: Int, level: Int) -> Int {
        level == 0 ? Int(leafCounts[node]) : Int(innerCounts[node])
    }

    // MARK: Structural changes

    /// Changes the start of the run at `run`, keeping the order of runs; ancestors' minima follow.
    private mutating func setStart(of run: Position, to value: UInt128) {
        let old = starts[run.slot]
        starts[run.slot] = value
        // Only a leaf's first start is copied into its ancestors.
        if run.index == 0 && height > 0 { refreshMinima(along: old, node: Int(root), level: height) }
    }

    /// Re-reads the minimum of every child on the path that `key` took before a leaf's first start changed.
    private mutating func refreshMinima(along key: UInt128, node: Int, level: Int) {
        let index = childIndex(for: key, in: node)
        let child = Int(children[node * Self.innerOrder + index])
        if level > 1 { refreshMinima(along: key, node: child, level: level - 1) }
        minima[node * Self.innerOrder + index] = minimum(of: child, level: level - 1)
    }

    /// Adds the run `start...end` right after the run at `previous` (nil: before every run).
    private mutating func insertRun(start: UInt128, end: UInt128, after previous: Position?) {
        intervalCount += 1
        guard root != IntervalSet.none else {
            let leaf = makeLeaf()
            starts[leaf * Self.leafOrder] = start
            ends[leaf * Self.leafOrder] = end
            leafCounts[leaf] = 1
            root = Int32(leaf)
            firstLeaf = Int32(leaf)
            height = 0
            return
        }
        // Not first in its leaf and the leaf has room: no ancestor changes, so skip the descent.
        if let previous, Int(leafCounts[previous.leaf]) < Self.leafOrder {
            shiftIn(leaf: previous.leaf, at: previous.index + 1, start: start, end: end)
            return
        }
        guard let sibling = insert(start: start, end: end, into: Int(root), level: height) else { return }
        let oldRoot = Int(root)
        let newRoot = makeInner()
        let base = newRoot * Self.innerOrder
        minima[base] = minimum(of: oldRoot, level: height)
        children[base] = Int32(oldRoot)
        minima[base + 1] = minimum(of: sibling, level: height)
        children[base + 1] = Int32(sibling)
        innerCounts[newRoot] = 2
        root = Int32(newRoot)
        height += 1
    }

    /// Inserts into the subtree of `node`; returns the new right sibling when `node` had to split.
    private mutating func insert(start: UInt128, end: UInt128, into node: Int, level: Int) -> Int? {
        if level == 0 { return insertIntoLeaf(node, start: start, end: end) }
        let index = childIndex(for: start, in: node)
        let base = node * Self.innerOrder
        let child = Int(children[base + index])
        let split = insert(start: start, end: end, into: child, level: level - 1)
        minima[base + index] = minimum(of: child, level: level - 1)
        guard let split else { return nil }
        return insertChild(split, minimum: minimum(of: split, level: level - 1), at: index + 1, into: node)
    }

    private mutating func insertIntoLeaf(_ leaf: Int, start: UInt128, end: UInt128) -> Int? {
        let base = leaf * Self.leafOrder
        let count = Int(leafCounts[leaf])
        var index = 0
        while index < count && starts[base + index] < start { index += 1 }
        var target = leaf, sibling: Int? = nil
        if count == Self.leafOrder {
            // Move the upper half to a new leaf, then insert on whichever side the run belongs.
            let right = makeLeaf()
            let half = Self.leafOrder / 2
            let rightBase = right * Self.leafOrder
            for offset in 0..<half {
                starts[rightBase + offset] = starts[base + half + offset]
                ends[rightBase + offset] = ends[base + half + offset]
            }
            leafCounts[right] = Int32(half)
            leafCounts[leaf] = Int32(half)
            leafNext[right] = leafNext[leaf]
            leafNext[leaf] = Int32(right)
            sibling = right
            if index > half { target = right; index -= half }
        }
        shiftIn(leaf: target, at: index, start: start, end: end)
        return sibling
    }

    /// Puts a run at `index` of a leaf with room, moving later runs up one slot.
    private mutating func shiftIn(leaf: Int, at index: Int, start: UInt128, end: UInt128) {
        let base = leaf * Self.leafOrder
        let count = Int(leafCounts[leaf])
        Self.open(&starts, at: base + index, count: count - index)
        Self.open(&ends, at: base + index, count: count - index)
        starts[base + index] = start
        ends[base + index] = end
        leafCounts[leaf] = Int32(count + 1)
    }

    /// Moves `count` values at `slot` up by one.
    @inline(__always)
    private static func open(_ values: inout ContiguousArray<UInt128>, at slot: Int, count: Int) {
        move(&values, from: slot, to: slot + 1, count: count)
    }

    /// Moves `count` values after `slot` down by one, overwriting it.
    @inline(__always)
    private static func close(_ values: inout ContiguousArray<UInt128>, at slot: Int, count: Int) {
        move(&values, from: slot + 1, to: slot, count: count)
    }

    /// Copies `count` values from `source` to `target` within one array; the ranges may overlap.
    @inline(__always)
    private static func move<Value>(_ values: inout ContiguousArray<Value>, from source: Int, to target: Int, count: Int) {
        guard count > 0 else { return }
        values.withUnsafeMutableBufferPointer { ($0.baseAddress! + target).update(from: $0.baseAddress! + source, count: count) }
    }

    /// Inserts child `child` at `index` of inner node `node`; returns the new right sibling when `node` split.
    private mutating func insertChild(_ child: Int, minimum: UInt128, at index: Int, into node: Int) -> Int? {
        var target = node, position = index, sibling: Int? = nil
        if Int(innerCounts[node]) == Self.innerOrder {
            let right = makeInner()
            let half = Self.innerOrder / 2
            let base = node * Self.innerOrder, rightBase = right * Self.innerOrder
            for offset in 0..<half {
                minima[rightBase + offset] = minima[base + half + offset]
                children[rightBase + offset] = children[base + half + offset]
            }
            innerCounts[right] = Int32(half)
            innerCounts[node] = Int32(half)
            sibling = right
            if position > half { target = right; position -= half }
        }
        let base = target * Self.innerOrder
        let count = Int(innerCounts[target])
        var slot = count
        while slot > position {
            minima[base + slot] = minima[base + slot - 1]
            children[base + slot] = children[base + slot - 1]
            slot -= 1
        }
        minima[base + position] = minimum
        children[base + position] = Int32(child)
        innerCounts[target] = Int32(count + 1)
        return sibling
    }

    /// Removes the run at `run`, which starts at `start`.
    private mutating func deleteRun(at run: Position, start: UInt128) {
        intervalCount -= 1
        let count = Int(leafCounts[run.leaf])
        // Not first in its leaf and the leaf stays at least half full (or is the root): no ancestor changes.
        if run.index > 0 && (count > Self.leafOrder / 2 || height == 0) {
            Self.close(&starts, at: run.slot, count: count - 1 - run.index)
            Self.close(&ends, at: run.slot, count: count - 1 - run.index)
            leafCounts[run.leaf] = Int32(count - 1)
            return
        }
        _ = delete(start: start, from: Int(root), level: height)
        let top = Int(root)
        if height == 0 {
            if leafCounts[top] == 0 {
                releaseLeaf(top)
                root = IntervalSet.none
                firstLeaf = IntervalSet.none
            }
        } else if innerCounts[top] == 1 {
            root = children[top * Self.innerOrder]
            releaseInner(top)
            height -= 1
        }
    }

    /// Removes the run starting at `start` from the subtree of `node`; returns true when `node` is left underfull.
    private mutating func delete(start: UInt128, from node: Int, level: Int) -> Bool {
        if level == 0 {
            let base = node * Self.leafOrder
            let count = Int(leafCounts[node])
            let index = starts.withUnsafeBufferPointer { Self.countNotAbove(start, in: $0, from: base, count: count) } - 1
            Self.close(&starts, at: base + index, count: count - 1 - index)
            Self.close(&ends, at: base + index, count: count - 1 - index)
            leafCounts[node] = Int32(count - 1)
            return count - 1 < Self.leafOrder / 2
        }
        let index = childIndex(for: start, in: node)
        let base = node * Self.innerOrder
        let child = Int(children[base + index])
        if delete(start: start, from: child, level: level - 1) {
            rebalance(node, at: index, level: level)
        } else {
            minima[base + index] = minimum(of: child, level: level - 1)
        }
        return Int(innerCounts[node]) < Self.innerOrder / 2
    }

    /// Fixes underfull child `index` of inner node `node` by merging it with a neighbour, or
    /// borrowing one entry when both together would not fit in one node.
    private mutating func rebalance(_ node: Int, at index: Int, level: Int) {
        let base = node * Self.innerOrder
        let count = Int(innerCounts[node])
        if count == 1 {
            // Only the root can have a single child; it is collapsed by the caller.
            minima[base] = minimum(of: Int(children[base]), level: level - 1)
            return
        }
        let leftIndex = index > 0 ? index - 1 : index
        let left = Int(children[base + leftIndex]), right = Int(children[base + leftIndex + 1])
        let childLevel = level - 1
        let capacity = childLevel == 0 ? Self.leafOrder : Self.innerOrder
        let leftSize = size(of: left, level: childLevel), rightSize = size(of: right, level: childLevel)
        if leftSize + rightSize <= capacity {
            moveEntries(from: right, range: 0..<rightSize, to: left, at: leftSize, level: childLevel)
            if childLevel == 0 {
                leafNext[left] = leafNext[right]
                releaseLeaf(right)
            } else {
                releaseInner(right)
            }
            for slot in (leftIndex + 1)..<(count - 1) {
                minima[base + slot] = minima[base + slot + 1]
                children[base + slot] = children[base + slot + 1]
            }
            innerCounts[node] = Int32(count - 1)
        } else if leftSize > rightSize {
            // Even out the two nodes rather than move one entry, so the next deletions in the
            // underfull one (the allocation frontier keeps hitting the same leaf) need no rebalancing.
            let moved = (leftSize - rightSize) / 2
            shiftRight(right, count: rightSize, by: moved, level: childLevel)
            moveEntries(from: left, range: (leftSize - moved)..<leftSize, to: right, at: 0, level: childLevel)
            setSize(of: left, to: leftSize - moved, level: childLevel)
            minima[base + leftIndex + 1] = minimum(of: right, level: childLevel)
        } else {
            let moved = (rightSize - leftSize) / 2
            moveEntries(from: right, range: 0..<moved, to: left, at: leftSize, level: childLevel)
            shiftLeft(right, count: rightSize, by: moved, level: childLevel)
            minima[base + leftIndex + 1] = minimum(of: right, level: childLevel)
        }
        minima[base + leftIndex] = minimum(of: left, level: childLevel)
    }

    /// Appends entries `range` of `source` to `target` starting at `position`, growing `target`'s size.
    private mutating func moveEntries(from source: Int, range: Range<Int>, to target: Int, at position: Int, level: Int) {
        if level == 0 {
            let from = source * Self.leafOrder, to = target * Self.leafOrder + position
            for offset in range {
                starts[to + offset - range.lowerBound] = starts[from + offset]
                ends[to + offset - range.lowerBound] = ends[from + offset]
            }
            leafCounts[target] += Int32(range.count)
        } else {
            let from = source * Self.innerOrder, to = target * Self.innerOrder + position
            for offset in range {
                minima[to + offset - range.lowerBound] = minima[from + offset]
                children[to + offset - range.lowerBound] = children[from + offset]
            }
            innerCounts[target] += Int32(range.count)
        }
    }

    /// Opens slots `0..<gap` of `node`, which holds `count` entries; its size is unchanged until the caller fills them.
    private mutating func shiftRight(_ node: Int, count: Int, by gap: Int, level: Int) {
        if level == 0 {
            let base = node * Self.leafOrder
            Self.move(&starts, from: base, to: base + gap, count: count)
            Self.move(&ends, from: base, to: base + gap, count: count)
        } else {
            let base = node * Self.innerOrder
            Self.move(&minima, from: base, to: base + gap, count: count)
            Self.move(&children, from: base, to: base + gap, count: count)
        }
    }

    /// Drops slots `0..<gap` of `node`, which holds `count` entries.
    private mutating func shiftLeft(_ node: Int, count: Int, by gap: Int, level: Int) {
        if level == 0 {
            let base = node * Self.leafOrder
            Self.move(&starts, from: base + gap, to: base, count: count - gap)
            Self.move(&ends, from: base + gap, to: base, count: count - gap)
            leafCounts[node] = Int32(count - gap)
        } else {
            let base = node * Self.innerOrder
            Self.move(&minima, from: base + gap, to: base, count: count - gap)
            Self.move(&children, from: base + gap, to: base, count: count - gap)
            innerCounts[node] = Int32(count - gap)
        }
    }

    private mutating func setSize(of node: Int, to size: Int, level: Int) {
        if level == 0 { leafCounts[node] = Int32(size) } else { innerCounts[node] = Int32(size) }
    }

    // MARK: Node storage

    private mutating func makeLeaf() -> Int {
        if freeLeaf != IntervalSet.none {
            let leaf = Int(freeLeaf)
            freeLeaf = leafNext[leaf]
            leafNext[leaf] = IntervalSet.none
            leafCounts[leaf] = 0
            return leaf
        }
        let leaf = leafCounts.count
        starts.append(contentsOf: repeatElement(0, count: Self.leafOrder))
        ends.append(contentsOf: repeatElement(0, count: Self.leafOrder))
        leafCounts.append(0)
        leafNext.append(IntervalSet.none)
        return leaf
    }

    private mutating func releaseLeaf(_ leaf: Int) {
        leafCounts[leaf] = 0
        leafNext[leaf] = freeLeaf
        freeLeaf = Int32(leaf)
    }

    private mutating func makeInner() -> Int {
        if freeInner != IntervalSet.none {
            let node = Int(freeInner)
            freeInner = children[node * Self.innerOrder]
            innerCounts[node] = 0
            return node
        }
        let node = innerCounts.count
        minima.append(contentsOf: repeatElement(0, count: Self.innerOrder))
        children.append(contentsOf: repeatElement(IntervalSet.none, count: Self.innerOrder))
        innerCounts.append(0)
        return node
    }

    private mutating func releaseInner(_ node: Int) {
        innerCounts[node] = 0
        children[node * Self.innerOrder] = freeInner
        freeInner = Int32(node)
    }
}
