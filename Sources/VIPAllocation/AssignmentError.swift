import VIPModel

/// Why an address cannot be given to an owner; the description is shown on the service's events.
public enum AssignmentError: Error, Sendable, Hashable, CustomStringConvertible {
    case outsidePools(IPAddress)
    case excluded(IPAddress, pool: String)
    /// `by` lists the holders that refuse to share (sorted); `reason` is why the first of them refuses.
    case inUse(IPAddress, by: [String], reason: String)

    public var description: String {
        switch self {
        case .outsidePools(let address):
            "\(address) is not in any address pool"
        case .excluded(let address, let pool):
            "\(address) is excluded from pool \"\(pool)\" by avoidBuggyIPs"
        case .inUse(let address, let owners, let reason):
            "\(address) is already in use by \(owners.joined(separator: ", ")): \(reason)"
        }
    }
}
