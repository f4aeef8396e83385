import VIPModel

/// One nft script, applied as one transaction (`nft_run_cmd_from_buffer`): all of it or nothing.
public struct RulesetUpdate: Sendable {
    public var script: String
    /// Nothing to change: the applier may skip the call.
    public var isEmpty: Bool
    /// Services whose rules, map elements or counters the script touches.
    public var changedServices: Int
    /// `VIP . protocol . port` -> service for the whole resulting state, so the applier can add up the
    /// counters of the `stats4/6` elements per service.
    public var keyServices: [String: ObjectKey]

    public init(script: String, isEmpty: Bool, changedServices: Int, keyServices: [String: ObjectKey]) {
        self.script = script
        self.isEmpty = isEmpty
        self.changedServices = changedServices
        self.keyServices = keyServices
    }
}

/// Applies rendered updates to the kernel (nftables), or records them in tests.
public protocol RulesetApplier: Sendable {
    func apply(_ update: RulesetUpdate) async throws
}
