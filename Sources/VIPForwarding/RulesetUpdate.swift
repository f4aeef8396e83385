import VIPModel

/// One nft script, applied as one transaction (`nft_run_cmd_from_buffer`): all of it or nothing.
public struct RulesetUpdate: Sendable {
    public var script: String
    /// Nothing to change: the applier may skip the call.
    public var isEmpty: Bool
    /// Services whose rules, map elements or counters the script touches.
    public var changedServices: Int
    /// The state the script leads to, so the applier can name the services behind counted elements
    /// (`ForwardingState.keyServices`) when asked, not on every update.
    public var state: ForwardingState

    public init(script: String, isEmpty: Bool, changedServices: Int, state: ForwardingState) {
        self.script = script
        self.isEmpty = isEmpty
        self.changedServices = changedServices
        self.state = state
    }
}

/// Applies rendered updates to the kernel (nftables), or records them in tests.
public protocol RulesetApplier: Sendable {
    func apply(_ update: RulesetUpdate) async throws
}
