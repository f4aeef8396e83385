// metalvip-bench: micro-benchmarks for MetalVIP subsystems.
// Usage: swift run -c release metalvip-bench [section ...]   (no arguments runs every section)

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every subsystem adds its section here.
let sections: [any BenchmarkSection] = [
    AllocatorBenchmark(),
    AnnounceBenchmark(),
    L2Benchmark(),
    DatapathBenchmark(),
    TrafficBenchmark(),
    ScaleBenchmark(),
    FleetBenchmark(),
]

let requested = Set(CommandLine.arguments.dropFirst())
let unknown = requested.subtracting(sections.map(\.name))
if !unknown.isEmpty {
    print("unknown section(s): \(unknown.sorted().joined(separator: ", ")); available: \(sections.map(\.name).joined(separator: ", "))")
    exit(2)
}

for section in sections where requested.isEmpty || requested.contains(section.name) {
    print("# \(section.name)\n")
    for table in section.run() {
        print(table.render())
    }
}

let usage = ResourceUsage.current()
print("process: CPU \(Table.format(usage.cpuSeconds, digits: 3)) s, peak RSS \(Table.format(Double(usage.maxResidentBytes) / 1_048_576, digits: 1)) MiB")
