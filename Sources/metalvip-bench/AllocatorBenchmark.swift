import VIPPacket
import VIPAllocation
import VIPModel

/// Allocation cost must not depend on pool size or fill; these tables show whether it does.
struct AllocatorBenchmark: BenchmarkSection {
    let name = "allocator"

    private static let ipv4Pool = "10.0.0.0/8"
    private static let ipv6Pool = "2001:db8::/64"
    private static let fillPool = "172.16.0.0/16"

    func run() -> [Table] {
        [scaleTable(), fillTable(), constantOwnersTable()]
    }

    private static func space(_ range: String, avoidBuggyIPs: Bool = false) -> AddressSpace {
        let parsed = try! AddressRange.parse(range)
        return AddressSpace(pools: [PoolDefinition(name: "bench", ranges: [parsed], avoidBuggyIPs: avoidBuggyIPs)])
    }

    private static func ownerNames(_ count: Int, prefix: String) -> [String] {
        (0..<count).map { "ns-\($0 % 64)/\(prefix)-\($0)" }
    }

    /// lowestAvailable + assign, exactly what the policy layer does per service.
    @inline(__always)
    private static func allocate(_ space: inout AddressSpace, _ owner: String, family: IPFamily) {
        guard let address = space.lowestAvailable(inPool: "bench", family: family, for: .exclusive) else {
            fatalError("pool exhausted")
        }
        do {
            try space.assign(address, to: owner, profile: .exclusive)
        } catch {
            fatalError("\(error)")
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }

    // MARK: Pool size and owner count

    private func scaleTable() -> Table {
        var table = Table(title: "Allocation cost by pool size (lowestAvailable + assign, fresh pool)",
                          columns: ["pool", "owners", "wall ms", "CPU s", "ns/alloc"])
        var cpuFor100k: [String] = []
        let cases: [(String, IPFamily, Bool)] = [
            (Self.ipv4Pool, .ipv4, false),
            (Self.ipv4Pool + " avoidBuggyIPs", .ipv4, true),
            (Self.ipv6Pool, .ipv6, false),
        ]
        for (label, family, avoid) in cases {
            for owners in [1_000, 10_000, 100_000] {
                let names = Self.ownerNames(owners, prefix: "svc")
                var space = Self.space(family == .ipv4 ? Self.ipv4Pool : Self.ipv6Pool, avoidBuggyIPs: avoid)
                let cpuBefore = ResourceUsage.current().cpuSeconds
                let clock = ContinuousClock()
                let start = clock.now
                for name in names {
                    Self.allocate(&space, name, family: family)
                }
                let elapsed = Self.nanoseconds(clock.now - start)
                let cpu = ResourceUsage.current().cpuSeconds - cpuBefore
                precondition(space.usage(ofPool: "bench")?[family].inUse == AddressCount(UInt128(owners)))
                table.add([label, String(owners), Table.format(elapsed / 1e6, digits: 2),
                           Table.format(cpu, digits: 3), Table.format(elapsed / Double(owners), digits: 0)])
                if owners == 100_000 {
                    let verdict = cpu < 1 ? "PASS" : "FAIL"
                    cpuFor100k.append("\(label): 100k allocations took \(Table.format(cpu, digits: 3)) CPU s (goal < 1 s: \(verdict))")
                }
            }
        }
        table.notes = cpuFor100k
        return table
    }

    // MARK: Fill level

    private struct FillResult {
        var releaseNs: Double
        var allocateNs: Double
        var lowestFree: String
    }

    /// Fills a /16 past `fill`, releases random owners back down to it (scattering holes), then
    /// times release+allocate cycles of random owners. Each half is timed separately (the two clock
    /// reads cost ~20 ns each); the result is the median of several repetitions.
    private func measureFill(_ fill: Double, pool: String, capacity: Int, cycles: Int, repetitions: Int) -> FillResult {
        let target = Int(Double(capacity) * fill)
        let overfill = min(capacity, Int(Double(target) * 1.5))
        var rng = SplitMix64(seed: 0xF111 &+ UInt64(target))
        var space = Self.space(pool)
        var live = Self.ownerNames(overfill, prefix: "fill")
        for name in live { Self.allocate(&space, name, family: .ipv4) }
        while live.count > target {
            let index = Int(rng.next() % UInt64(live.count))
            space.release(owner: live[index])
            live.swapAt(index, live.count - 1)
            live.removeLast()
        }
        let lowestFree = space.lowestAvailable(inPool: "bench", family: .ipv4, for: .exclusive)?.description ?? "-"
        var releaseSamples: [Double] = [], allocateSamples: [Double] = []
        let clock = ContinuousClock()
        for repetition in 0..<repetitions {
            let fresh = Self.ownerNames(cycles, prefix: "cycle\(repetition)")
            let victims = (0..<cycles).map { _ in Int(rng.next() % UInt64(live.count)) }
            var releasing = Duration.zero, allocating = Duration.zero
            for i in 0..<cycles {
                let index = victims[i]
                let t0 = clock.now
                space.release(owner: live[index])
                let t1 = clock.now
                Self.allocate(&space, fresh[i], family: .ipv4)
                let t2 = clock.now
                releasing += t1 - t0
                allocating += t2 - t1
                live[index] = fresh[i]
            }
            releaseSamples.append(Self.nanoseconds(releasing) / Double(cycles))
            allocateSamples.append(Self.nanoseconds(allocating) / Double(cycles))
        }
        precondition(space.usage(ofPool: "bench")?.ipv4.inUse == AddressCount(UInt128(target)))
        releaseSamples.sort()
        allocateSamples.sort()
        return FillResult(releaseNs: releaseSamples[repetitions / 2], allocateNs: allocateSamples[repetitions / 2], lowestFree: lowestFree)
    }

    private func fillTable() -> Table {
        var table = Table(title: "Allocation cost by fill level (\(Self.fillPool), random release then lowest-free allocate; median of 5 x 10k)",
                          columns: ["fill", "owners", "lowest free after scatter", "ns/allocate", "allocate vs 1%", "ns/release", "ns/cycle"])
        let levels = [0.01, 0.50, 0.99]
        let results = levels.map { measureFill($0, pool: Self.fillPool, capacity: 65_536, cycles: 10_000, repetitions: 5) }
        let baseline = results[0].allocateNs
        var worst = 0.0
        for (level, result) in zip(levels, results) {
            let deviation = (result.allocateNs / baseline - 1) * 100
            worst = max(worst, abs(deviation))
            table.add([
                "\(Int(level * 100))%", String(Int(65_536 * level)), result.lowestFree,
                Table.format(result.allocateNs, digits: 0), (deviation >= 0 ? "+" : "") + Table.format(deviation, digits: 1) + "%",
                Table.format(result.releaseNs, digits: 0), Table.format(result.allocateNs + result.releaseNs, digits: 0),
            ])
        }
        table.notes = ["largest allocate deviation from 1% fill: \(Table.format(worst, digits: 1))% (goal within ±30%: \(worst <= 30 ? "PASS" : "FAIL"))"]
        return table
    }

    /// Same measurement with the owner count fixed and the pool size varied instead, so the working
    /// set (and thus cache behaviour) is identical and only the fill level changes.
    private func constantOwnersTable() -> Table {
        let owners = 6_000
        var table = Table(title: "Allocation cost by fill level at a constant \(owners) owners (pool size varies; median of 5 x 10k)",
                          columns: ["fill", "pool", "ns/allocate", "allocate vs 1%", "ns/release", "ns/cycle"])
        let levels = [0.01, 0.50, 0.99]
        var rows: [(String, FillResult)] = []
        for level in levels {
            let capacity = Int((Double(owners) / level).rounded(.up))
            let start: UInt32 = 0x0A00_0000
            let pool = "10.0.0.0-\(IPAddress(family: .ipv4, value: UInt128(start + UInt32(capacity - 1))))"
            rows.append((pool, measureFill(level, pool: pool, capacity: capacity, cycles: 10_000, repetitions: 5)))
        }
        let baseline = rows[0].1.allocateNs
        var worst = 0.0
        for (level, (pool, result)) in zip(levels, rows) {
            let deviation = (result.allocateNs / baseline - 1) * 100
            worst = max(worst, abs(deviation))
            table.add([
                "\(Int(level * 100))%", pool, Table.format(result.allocateNs, digits: 0),
                (deviation >= 0 ? "+" : "") + Table.format(deviation, digits: 1) + "%",
                Table.format(result.releaseNs, digits: 0), Table.format(result.allocateNs + result.releaseNs, digits: 0),
            ])
        }
        table.notes = ["largest allocate deviation from 1% fill: \(Table.format(worst, digits: 1))% (goal within ±30%: \(worst <= 30 ? "PASS" : "FAIL"))"]
        return table
    }
}
