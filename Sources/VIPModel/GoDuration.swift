/// Durations written as Go and Kubernetes write them (`500ms`, `1s`, `1.5s`, `2m`, `1h30m`), because
/// annotations come from users who already write them that way for kubelet probes and MetalLB.
public enum GoDuration {
    /// Units Go accepts, longest names first so `ms` is not read as `m` followed by junk.
    private static let units: [(name: String, nanoseconds: Int64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000), ("ms", 1_000_000),
        ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// Parses `[-]number unit [number unit ...]` (`0` alone needs no unit); nil on anything else or on overflow.
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        var negative = false
        if rest.first == "-" || rest.first == "+" {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        if rest.isEmpty { return nil }
        var total: Int64 = 0
        while !rest.isEmpty {
            let whole = rest.prefix(while: { $0.isASCII && $0.isNumber })
            rest = rest.dropFirst(whole.count)
            var fraction = Substring("")
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: { $0.isASCII && $0.isNumber })
                rest = rest.dropFirst(fraction.count)
            }
            if whole.isEmpty && fraction.isEmpty { return nil }
            guard let unit = units.first(where: { rest.hasPrefix($0.name) }) else { return nil }
            rest = rest.dropFirst(unit.name.count)
            guard let component = nanoseconds(whole: whole, fraction: fraction, unit: unit.nanoseconds) else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(component)
            if overflow { return nil }
            total = sum
        }
        return .nanoseconds(negative ? -total : total)
    }

    /// `whole.fraction` units in nanoseconds, truncated below one nanosecond as Go does.
    private static func nanoseconds(whole: Substring, fraction: Substring, unit: Int64) -> Int64? {
        var value: Int64 = 0
        for digit in whole {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = shifted.addingReportingOverflow(Int64(digit.wholeNumberValue ?? 0))
            if overflow1 || overflow2 { return nil }
            value = added
        }
        let (scaled, overflow) = value.multipliedReportingOverflow(by: unit)
        if overflow { return nil }
        // Digits past the 18th cannot change the result by a whole nanosecond for any unit up to an hour.
        var numerator: UInt128 = 0
        var denominator: UInt128 = 1
        for digit in fraction.prefix(18) {
            numerator = numerator * 10 + UInt128(digit.wholeNumberValue ?? 0)
            denominator *= 10
        }
        let part = Int64(numerator * UInt128(unit) / denominator)
        let (sum, overflow3) = scaled.addingReportingOverflow(part)
        return overflow3 ? nil : sum
    }

    /// The shortest exact text in the largest unit that divides the duration: `1h`, `90s`, `1500ms`, `0s`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanos == 0 { return "0s" }
        for (name, size) in units.reversed() where ["h", "m", "s", "ms", "us", "ns"].contains(name) {
            if nanos % size == 0 { return "\(nanos / size)\(name)" }
        }
        return "\(nanos)ns"
    }
}
