import VIPModel

/// One address pool as configured: the engine's input, before ordinals and exclusions are worked out.
public struct PoolDefinition: Sendable, Hashable {
    public var name: String
    /// May mix families, overlap each other and come unsorted; the engine normalizes them.
    public var ranges: [AddressRange]
    /// IPv4 only: never hand out addresses ending in .0 or .255, which some buggy clients drop.
    public var avoidBuggyIPs: Bool

    public init(name: String, ranges: [AddressRange], avoidBuggyIPs: Bool = false) {
        self.name = name
        self.ranges = ranges
        self.avoidBuggyIPs = avoidBuggyIPs
    }
}
