import VIPForwarding
import VIPModel

/// The data path's kernel side: MetalVIP's own `table inet metalvip`, programmed through one libnftables
/// context. Each `apply` is one `nft_run_cmd_from_buffer`, so one atomic transaction; nothing else in the
/// ruleset is ever flushed or edited. The committed state lives with the caller, never re-listed from the kernel.
public actor NFTables: RulesetApplier {
    public static let table = "metalvip"

    private let context: NFTablesContext
    /// Counter name -> service, from the last update applied.
    private var counterServices: [String: ObjectKey] = [:]

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
        counterServices = update.counterServices
    }

    /// Packets and bytes per service, from the named counters of the last applied state.
    public func counters() throws -> [ObjectKey: (packets: UInt64, bytes: UInt64)] {
        var result: [ObjectKey: (packets: UInt64, bytes: UInt64)] = [:]
        guard !counterServices.isEmpty else { return result }
        for (name, value) in try context.counters(table: Self.table) {
            guard let service = counterServices[name] else { continue }
            result[service] = value
        }
        return result
    }
}
