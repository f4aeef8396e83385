import VIPForwarding
import VIPModel

/// The data path's kernel side: MetalVIP's own `table inet metalvip`, programmed through one libnftables
/// context. Each `apply` is one `nft_run_cmd_from_buffer`, so one atomic transaction; nothing else in the
/// ruleset is ever flushed or edited. The committed state lives with the caller, never re-listed from the kernel.
public actor NFTables: RulesetApplier {
    public static let table = "metalvip"

    private let context: NFTablesContext
    /// The state of the last update applied, and the services behind its counted keys (made on first use).
    private var applied = ForwardingState.empty
    private var keyServices: [String: ObjectKey]?

    /// Opens the context in the calling thread's network namespace.
    public init() throws(NFTablesError) {
        context = try NFTablesContext()
    }

    /// Uses a context made elsewhere (for instance inside `NetworkNamespace.run`, to program that namespace).
    public init(context: NFTablesContext) {
        self.context = context
    }

    public func apply(_ update: RulesetUpdate) throws {
        guard !update.isEmpty else { return }
        try context.run(update.script)
        applied = update.state
        keyServices = nil
    }

    /// Packets and bytes per service (both directions, every VIP and port of it), added up from the counters
    /// of the `stats4/6` elements. A service port that loses its last endpoint leaves the set, and its count
    /// starts again from zero when it comes back.
    public func counters() throws -> [ObjectKey: (packets: UInt64, bytes: UInt64)] {
        var result: [ObjectKey: (packets: UInt64, bytes: UInt64)] = [:]
        let keyServices = self.keyServices ?? applied.keyServices
        self.keyServices = keyServices
        guard !keyServices.isEmpty else { return result }
        for set in ["stats4", "stats6"] {
            for (key, value) in try context.elementCounters(table: Self.table, set: set) {
                guard let service = keyServices[key] else { continue }
                let sum = result[service] ?? (0, 0)
                result[service] = (sum.packets + value.packets, sum.bytes + value.bytes)
            }
        }
        return result
    }
}
