/// A set of `UInt128` values kept as maximal disjoint intervals in a treap, so a pool's used
/// ordinals cost memory and time in the number of *runs*, never in the pool size.
///
/// Nodes live in one `ContiguousArray` and link by index: no per-node allocation or ARC traffic, and
/// copying the set is a single copy-on-write buffer. Priorities come from a fixed-seed generator, so
/// the tree shape (and therefore performance) is the same on every run.
public struct IntervalSet: Sendable, Sequence {
    private struct Node: Sendable {
        var start: UInt128
        var end: UInt128
        var left: Int32
        var right: Int32
        var priority: UInt32
    }

    private static let none: Int32 = -1

    private var nodes: ContiguousArray<Node> = []
    private var root: Int32 = IntervalSet.none
    /// Head of the list of recycled node slots, linked through `left`.
    private var freeList: Int32 = IntervalSet.none
    private var rngState: UInt32 = 0x9E37_79B9

    /// Number of values in the set.
    public private(set) var count: UInt128 = 0
    /// Number of maximal runs: the tree size, and a measure of fragmentation.
    public private(set) var intervalCount: Int = 0

    public init() {}

    public var isEmpty: Bool { root == IntervalSet.none }

    public func contains(_ value: UInt128) -> Bool {
        guard let node = floorNode(value) else { return false }
        return nodes[Int(node)].end >= value
    }

    /// Lowest value `>= lowerBound` that is not in the set; nil only when every value from there
    /// up to `UInt128.max` is present. Because runs are maximal, it is either `lowerBound` or the
    /// value right after the run covering it.
    public func lowestAbsent(atOrAbove lowerBound: UInt128 = 0) -> UInt128? {
        guard let node = floorNode(lowerBound) else { return lowerBound }
        let end = nodes[Int(node)].end
        if end < lowerBound { return lowerBound }
        return end == .max ? nil : end + 1
    }

    /// Adds `value`; returns false if it was already present.
    @discardableResult
    public mutating func insert(_ value: UInt128) -> Bool {
        let below = floorNode(value)
        if let below, nodes[Int(below)].end >= value { return false }
        count += 1
        let joinsBelow = below.map { nodes[Int($0)].end &+ 1 == value } ?? false
        let above: Int32? = value == .max ? nil : ceilingNode(value + 1)
        let joinsAbove = above.map { nodes[Int($0)].start == value + 1 } ?? false
        switch (joinsBelow, joinsAbove) {
        case (true, true):
            // Bridges two runs: extend the lower one and drop the upper.
            let upper = above!
            let upperStart = nodes[Int(upper)].start
            nodes[Int(below!)].end = nodes[Int(upper)].end
            root = removeNode(root, start: upperStart)
        case (true, false):
            nodes[Int(below!)].end = value
        case (false, true):
            // Moving a start down keeps the order: nothing lies between `below` and `value`.
            nodes[Int(above!)].start = value
        case (false, false):
            insertNode(start: value, end: value)
        }
        return true
    }

    /// Removes `value`; returns false if it was not present.
    @discardableResult
    public mutating func remove(_ value: UInt128) -> Bool {
        guard let node = floorNode(value) else { return false }
        let index = Int(node)
        let (start, end) = (nodes[index].start, nodes[index].end)
        guard end >= value else { return false }
        count -= 1
        if start == value && end == value {
            root = removeNode(root, start: start)
        } else if start == value {
            nodes[index].start = value + 1
        } else if end == value {
            nodes[index].end = value - 1
        } else {
            nodes[index].end = value - 1
            insertNode(start: value + 1, end: end)
        }
        return true
    }

    /// The runs in ascending order.
    public var intervals: [ClosedRange<UInt128>] { Array(self) }

    public func makeIterator() -> Iterator {
        Iterator(set: self)
    }

    /// In-order walk with an explicit stack; holds its own copy of the (copy-on-write) node storage.
    public struct Iterator: IteratorProtocol {
        private let set: IntervalSet
        private var stack: [Int32] = []

        fileprivate init(set: IntervalSet) {
            self.set = set
            pushLeftSpine(set.root)
        }

        private mutating func pushLeftSpine(_ start: Int32) {
            var node = start
            while node != IntervalSet.none {
                stack.append(node)
                node = set.nodes[Int(node)].left
            }
        }

        public mutating func next() -> ClosedRange<UInt128>? {
            guard let node = stack.popLast() else { return nil }
            let n = set.nodes[Int(node)]
            pushLeftSpine(n.right)
            return n.start...n.end
        }
    }

    // MARK: Tree internals

    /// Node with the largest start `<= value`.
    private func floorNode(_ value: UInt128) -> Int32? {
        var node = root
        var best: Int32? = nil
        while node != IntervalSet.none {
            let n = nodes[Int(node)]
            if n.start <= value {
                best = node
                node = n.right
            } else {
                node = n.left
            }
        }
        return best
    }

    /// Node with the smallest start `>= value`.
    private func ceilingNode(_ value: UInt128) -> Int32? {
        var node = root
        var best: Int32? = nil
        while node != IntervalSet.none {
            let n = nodes[Int(node)]
            if n.start >= value {
                best = node
                node = n.left
            } else {
                node = n.right
            }
        }
        return best
    }

    private mutating func nextPriority() -> UInt32 {
        // xorshift32: cheap, deterministic, good enough to keep the treap balanced.
        rngState ^= rngState << 13
        rngState ^= rngState >> 17
        rngState ^= rngState << 5
        return rngState
    }

    private mutating func insertNode(start: UInt128, end: UInt128) {
        let node = Node(start: start, end: end, left: IntervalSet.none, right: IntervalSet.none, priority: nextPriority())
        let index: Int32
        if freeList != IntervalSet.none {
            index = freeList
            freeList = nodes[Int(index)].left
            nodes[Int(index)] = node
        } else {
            index = Int32(nodes.count)
            nodes.append(node)
        }
        let (less, greater) = split(root, at: start)
        root = merge(merge(less, index), greater)
        intervalCount += 1
    }

    /// Splits `tree` into nodes with start `< key` and the rest.
    private mutating func split(_ tree: Int32, at key: UInt128) -> (Int32, Int32) {
        if tree == IntervalSet.none { return (IntervalSet.none, IntervalSet.none) }
        let t = Int(tree)
        if nodes[t].start < key {
            let (less, greater) = split(nodes[t].right, at: key)
            nodes[t].right = less
            return (tree, greater)
        } else {
            let (less, greater) = split(nodes[t].left, at: key)
            nodes[t].left = greater
            return (less, tree)
        }
    }

    /// Joins two trees where every start in `a` is below every start in `b`.
    private mutating func merge(_ a: Int32, _ b: Int32) -> Int32 {
        if a == IntervalSet.none { return b }
        if b == IntervalSet.none { return a }
        if nodes[Int(a)].priority > nodes[Int(b)].priority {
            nodes[Int(a)].right = merge(nodes[Int(a)].right, b)
            return a
        } else {
            nodes[Int(b)].left = merge(a, nodes[Int(b)].left)
            return b
        }
    }

    /// Removes the node whose start is `start` from `tree`; returns the new subtree root.
    private mutating func removeNode(_ tree: Int32, start: UInt128) -> Int32 {
        guard tree != IntervalSet.none else { return tree }
        let t = Int(tree)
        if nodes[t].start == start {
            let replacement = merge(nodes[t].left, nodes[t].right)
            nodes[t].left = freeList
            freeList = tree
            intervalCount -= 1
            return replacement
        }
        if start < nodes[t].start {
            nodes[t].left = removeNode(nodes[t].left, start: start)
        } else {
            nodes[t].right = removeNode(nodes[t].right, start: start)
        }
        return tree
    }
}
