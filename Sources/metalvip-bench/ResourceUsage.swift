#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time and peak memory of this process, from getrusage.
struct ResourceUsage {
    var cpuSeconds: Double
    var maxResidentBytes: Int

    static func current() -> ResourceUsage {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        #if canImport(Darwin)
        let rss = Int(usage.ru_maxrss)          // bytes on Darwin
        #else
        let rss = Int(usage.ru_maxrss) * 1024   // kilobytes on Linux
        #endif
        return ResourceUsage(cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), maxResidentBytes: rss)
    }
}
