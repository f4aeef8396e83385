import CNFTables
import Foundation

/// One libnftables context, used synchronously. Its netlink socket is opened in `nft_ctx_new`
/// (libnftables 1.0.6, NFT_CTX_DEFAULT), so it talks to the network namespace of the thread that created
/// it, whatever thread runs the commands later: create it inside `NetworkNamespace.run` to program a namespace.
/// Not thread-safe: the owner (NFTables, or one test thread) runs one command at a time.
public final class NFTablesContext: @unchecked Sendable {
    /// How many script lines a transaction error quotes.
    static let quotedLines = 8

    private let handle: OpaquePointer

    public init() throws(NFTablesError) {
        guard let handle = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else { throw .contextUnavailable }
        self.handle = handle
        // Buffered streams: messages come back to us instead of going to the process's stdout/stderr.
        guard nft_ctx_buffer_output(handle) == 0 else { nft_ctx_free(handle); throw .bufferingFailed("nft_ctx_buffer_output") }
        guard nft_ctx_buffer_error(handle) == 0 else { nft_ctx_free(handle); throw .bufferingFailed("nft_ctx_buffer_error") }
    }

    deinit { nft_ctx_free(handle) }

    /// Runs `script` as one transaction: all of it is committed or none. Returns nft's output.
    @discardableResult
    public func run(_ script: String) throws(NFTablesError) -> String {
        let status = nft_run_cmd_from_buffer(handle, script)
        let output = Self.text(nft_ctx_get_output_buffer(handle))
        let errors = Self.text(nft_ctx_get_error_buffer(handle))
        guard status == 0 else {
            let head = script.split(separator: "\n", omittingEmptySubsequences: false).prefix(Self.quotedLines).joined(separator: "\n")
            throw .transactionFailed(message: errors.isEmpty ? "nft_run_cmd_from_buffer returned \(status)" : errors, scriptHead: head)
        }
        return output
    }

    /// Runs a listing command with JSON output and decodes it.
    public func listJSON(_ command: String) throws(NFTablesError) -> [String: Any] {
        let flags = nft_ctx_output_get_flags(handle)
        nft_ctx_output_set_flags(handle, flags | UInt32(NFT_CTX_OUTPUT_JSON))
        defer { nft_ctx_output_set_flags(handle, flags) }
        let output: String
        do {
            output = try run(command)
        } catch .transactionFailed(let message, _) {
            throw .listingFailed(command: command, message: message)
        } catch {
            throw error
        }
        guard let decoded = try? JSONSerialization.jsonObject(with: Data(output.utf8)), let object = decoded as? [String: Any] else {
            throw .malformedListing(command: command, reason: "not a JSON object: \(output.prefix(200))")
        }
        return object
    }

    /// Packets and bytes of every element of a set declared with `counter`, by element as nft writes it
    /// (`198.51.100.10 . tcp . 80`). An element without a counter is left out.
    public func elementCounters(table: String, set: String) throws(NFTablesError) -> [String: (packets: UInt64, bytes: UInt64)] {
        let command = "list set inet \(table) \(set)"
        let listing = try listJSON(command)
        guard let items = listing["nftables"] as? [[String: Any]] else {
            throw .malformedListing(command: command, reason: "no \"nftables\" array")
        }
        var result: [String: (packets: UInt64, bytes: UInt64)] = [:]
        for item in items {
            guard let set = item["set"] as? [String: Any] else { continue }
            for entry in set["elem"] as? [Any] ?? [] {
                guard let element = (entry as? [String: Any])?["elem"] as? [String: Any] else { continue }
                guard let parts = (element["val"] as? [String: Any])?["concat"] as? [Any] else {
                    throw .malformedListing(command: command, reason: "element without a concatenated key: \(element)")
                }
                guard let counter = element["counter"] as? [String: Any] else { continue }
                guard let packets = (counter["packets"] as? NSNumber)?.uint64Value,
                      let bytes = (counter["bytes"] as? NSNumber)?.uint64Value else {
                    throw .malformedListing(command: command, reason: "counter without packets or bytes: \(counter)")
                }
                result[parts.map { "\($0)" }.joined(separator: " . ")] = (packets, bytes)
            }
        }
        return result
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }
}
