/// What went wrong talking to nftables, with nft's own words where it gave any.
public enum NFTablesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `nft_ctx_new` returned NULL (out of memory, or netlink unavailable).
    case contextUnavailable
    /// Buffering nft's output or error stream failed (`nft_ctx_buffer_output` / `nft_ctx_buffer_error`).
    case bufferingFailed(String)
    /// nft refused the script; the kernel kept its previous state (one transaction).
    case transactionFailed(message: String, scriptHead: String)
    /// A listing command failed.
    case listingFailed(command: String, message: String)
    /// nft's JSON listing was not what the parser expects.
    case malformedListing(command: String, reason: String)

    public var description: String {
        switch self {
        case .contextUnavailable:
            return "nftables: nft_ctx_new failed (no memory, or no netlink access: MetalVIP's data path needs CAP_NET_ADMIN)"
        case .bufferingFailed(let what):
            return "nftables: \(what) failed"
        case .transactionFailed(let message, let scriptHead):
            return "nftables: transaction refused, nothing changed: \(message)\nscript begins:\n\(scriptHead)"
        case .listingFailed(let command, let message):
            return "nftables: \(command): \(message)"
        case .malformedListing(let command, let reason):
            return "nftables: \(command): unexpected JSON: \(reason)"
        }
    }
}
