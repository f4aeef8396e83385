import VIPModel

extension AddressSpace {
    /// The usable addresses of one family of one pool, numbered densely 0..<N in address order.
    ///
    /// The allocator works on ordinals so "lowest free" is a tree query, not a scan; this type turns
    /// ordinals back into addresses and vice versa with a binary search over the pool's segments.
    /// avoidBuggyIPs exclusions are handled arithmetically (254 usable per /24) rather than stored.
    struct OrdinalMap: Sendable {
        struct Segment: Sendable {
            var first: UInt128
            var last: UInt128
            /// Ordinal of the segment's first usable address.
            var base: UInt128
            var lastOrdinal: UInt128
        }

        private(set) var segments: [Segment] = []
        let avoidBuggyIPs: Bool

        /// `pieces` must be sorted and disjoint.
        init(pieces: [ClosedRange<UInt128>], avoidBuggyIPs: Bool) {
            self.avoidBuggyIPs = avoidBuggyIPs
            var next: UInt128 = 0
            for piece in pieces {
                let span: UInt128
                if avoidBuggyIPs {
                    let usable = Self.rank(piece.upperBound + 1) - Self.rank(piece.lowerBound)
                    if usable == 0 { continue }
                    span = usable - 1
                } else {
                    span = piece.upperBound - piece.lowerBound
                }
                segments.append(Segment(first: piece.lowerBound, last: piece.upperBound, base: next, lastOrdinal: next + span))
                // Wraps only after the final ordinal of ::/0, when no segment can follow.
                next = next &+ span &+ 1
            }
        }

        var lastOrdinal: UInt128? { segments.last?.lastOrdinal }

        /// Number of usable addresses (2^128 for ::/0).
        var total: AddressCount {
            guard let lastOrdinal else { return .zero }
            return AddressCount(lastOrdinal) + AddressCount(1)
        }

        /// Ordinal of `value`, known to lie in segment `index`; nil when avoidBuggyIPs excludes it.
        func ordinal(of value: UInt128, inSegment index: Int) -> UInt128? {
            let segment = segments[index]
            guard avoidBuggyIPs else { return segment.base + (value - segment.first) }
            guard Self.isUsable(value) else { return nil }
            return segment.base + Self.rank(value) - Self.rank(segment.first)
        }

        /// Address value of `ordinal`, which must be at most `lastOrdinal`.
        func value(at ordinal: UInt128) -> UInt128 {
            // Last segment whose base is <= ordinal.
            var low = 0, high = segments.count - 1
            while low < high {
                let mid = (low + high + 1) / 2
                if segments[mid].base <= ordinal { low = mid } else { high = mid - 1 }
            }
            let segment = segments[low]
            let offset = ordinal - segment.base
            guard avoidBuggyIPs else { return segment.first + offset }
            return Self.unrank(Self.rank(segment.first) + offset)
        }

        /// Usable under avoidBuggyIPs: last octet neither 0 nor 255.
        static func isUsable(_ value: UInt128) -> Bool {
            let octet = value & 0xff
            return octet != 0 && octet != 255
        }

        /// Number of usable addresses in [0, value): 254 per full /24 plus the usable part of the last one.
        static func rank(_ value: UInt128) -> UInt128 {
            let octet = value & 0xff
            return (value >> 8) * 254 + (octet == 0 ? 0 : min(octet - 1, 254))
        }

        /// The usable address with `rank` usable addresses below it.
        static func unrank(_ rank: UInt128) -> UInt128 {
            (rank / 254) << 8 + 1 + rank % 254
        }
    }
}
