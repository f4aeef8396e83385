import Foundation
import NIOHTTP1
import VIPModel

/// The JSON shapes of etcd's v3 gateway (grpc-gateway over etcdserverpb). The gateway writes int64 as
/// strings, bytes as base64, enums by name, and leaves out every field that holds its default.
enum EtcdWire {
    /// An int64 that arrives as `"12"` (or, from some gateways, as `12`) and is sent as a string.
    struct Int64String: Codable, Sendable, Hashable {
        var value: Int64
        init(_ value: Int64) { self.value = value }
        /// The gateway's string form first: each failed `try?` throws, and a watch frame carries three of
        /// these per event (that ordering was the largest single cost of a speaker taking 10k claims).
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                guard let number = Int64(text) else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an int64: \(text)")
                }
                value = number
            } else {
                value = try container.decode(Int64.self)
            }
        }
        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(String(value))
        }
    }

    struct Header: Decodable, Sendable, Equatable {
        var revision: Int64String?
        var member_id: String?
        var raft_term: Int64String?
    }

    struct KeyValue: Decodable, Sendable, Equatable {
        var key: Data
        var value: Data?
        var create_revision: Int64String?
        var mod_revision: Int64String?
        var version: Int64String?
    }

    struct RangeRequest: Encodable, Sendable {
        var key: Data
        var range_end: Data?
        var limit: Int64String?
        var revision: Int64String?
        var keys_only: Bool?
    }

    struct RangeResponse: Decodable, Sendable {
        var header: Header?
        var kvs: [KeyValue]?
        var more: Bool?
    }

    struct PutRequest: Encodable, Sendable {
        var key: Data
        var value: Data
    }

    struct DeleteRangeRequest: Encodable, Sendable {
        var key: Data
    }

    struct Compare: Encodable, Sendable {
        var key: Data
        var target: String
        var result: String
        var version: Int64String?
        var create_revision: Int64String?
        var mod_revision: Int64String?
    }

    struct RequestOp: Encodable, Sendable {
        var request_range: RangeRequest?
        var request_put: PutRequest?
        var request_delete_range: DeleteRangeRequest?
    }

    struct TxnRequest: Encodable, Sendable {
        var compare: [Compare]
        var success: [RequestOp]
        var failure: [RequestOp]
    }

    struct ResponseOp: Decodable, Sendable {
        var response_range: RangeResponse?
    }

    struct TxnResponse: Decodable, Sendable {
        var header: Header?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct CompactionRequest: Encodable, Sendable {
        var revision: Int64String
    }

    struct AuthenticateRequest: Encodable, Sendable {
        var name: String
        var password: String
    }

    struct AuthenticateResponse: Decodable, Sendable {
        var token: String?
    }

    struct StatusResponse: Decodable, Sendable {
        var header: Header?
        var leader: String?
    }

    struct WatchCreate: Encodable, Sendable {
        var key: Data
        var range_end: Data?
        var start_revision: Int64String
    }

    struct WatchRequest: Encodable, Sendable {
        var create_request: WatchCreate
    }

    struct Event: Decodable, Sendable, Equatable {
        /// Absent for PUT (the enum's default), `DELETE` otherwise.
        var type: String?
        var kv: KeyValue
    }

    struct WatchResponse: Decodable, Sendable, Equatable {
        var header: Header?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: Int64String?
        var cancel_reason: String?
        var events: [Event]?
    }

    /// One line of the streamed watch body: `{"result": {...}}`, or `{"error": {...}}` when the stream fails.
    struct WatchFrame: Decodable, Sendable, Equatable {
        var result: WatchResponse?
        var error: ErrorBody?
    }

    /// What the gateway sends with a non-200 status (and inside a failed stream).
    struct ErrorBody: Decodable, Sendable, Equatable {
        var error: String?
        var message: String?
        var code: Int?
        /// gRPC codes the store reacts to.
        static let outOfRange = 11
        static let unavailable = 14
        static let unauthenticated = 16
        static let invalidArgument = 3
        static let failedPrecondition = 9

        var text: String { message ?? error ?? "unknown error" }

        init(error: String? = nil, message: String? = nil, code: Int? = nil) {
            self.error = error
            self.message = message
            self.code = code
        }

        /// What a non-200 answer says: etcd's JSON error, or just the HTTP status when the body is not one.
        init(_ body: Data, status: HTTPResponseStatus) {
            self = (try? JSONDecoder().decode(ErrorBody.self, from: body)) ?? ErrorBody(message: "HTTP \(status.code)")
        }
    }
}

/// A watch line read by hand, through `JSONText`: every speaker reads every write of the cluster through
/// here, and `JSONDecoder` took 12 µs a one-event frame where this takes under 5 (release build).
/// Only what the watch uses is read; the header is skipped.
extension EtcdWire.WatchFrame {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String
    }

    init(line: Data) throws {
        let document: Value
        do { document = try JSONText.parse(line) } catch { throw Unreadable(description: "\(error)") }
        guard case .object(let fields) = document else { throw Unreadable(description: "not an object") }
        self.init(result: try fields["result"].map(Self.response), error: try fields["error"].map(Self.errorBody))
    }

    private static func response(_ value: Value) throws -> EtcdWire.WatchResponse {
        let fields = try object(value, "result")
        return EtcdWire.WatchResponse(
            header: nil,
            created: try fields["created"].map { try bool($0, "created") },
            canceled: try fields["canceled"].map { try bool($0, "canceled") },
            compact_revision: try fields["compact_revision"].map { try int64($0, "compact_revision") },
            cancel_reason: try fields["cancel_reason"].map { try string($0, "cancel_reason") },
            events: try fields["events"].map { events in
                guard case .array(let items) = events else { throw Unreadable(description: "events is not an array") }
                return try items.map(event)
            })
    }

    private static func event(_ value: Value) throws -> EtcdWire.Event {
        let fields = try object(value, "event")
        guard let kv = fields["kv"] else { throw Unreadable(description: "an event without kv") }
        let kvFields = try object(kv, "kv")
        guard let key = kvFields["key"] else { throw Unreadable(description: "a kv without key") }
        return EtcdWire.Event(
            type: try fields["type"].map { try string($0, "type") },
            kv: EtcdWire.KeyValue(
                key: try bytes(key, "key"),
                value: try kvFields["value"].map { try bytes($0, "value") },
                create_revision: try kvFields["create_revision"].map { try int64($0, "create_revision") },
                mod_revision: try kvFields["mod_revision"].map { try int64($0, "mod_revision") },
                version: try kvFields["version"].map { try int64($0, "version") }))
    }

    private static func errorBody(_ value: Value) throws -> EtcdWire.ErrorBody {
        let fields = try object(value, "error")
        return EtcdWire.ErrorBody(
            error: try fields["error"].map { try string($0, "error") },
            message: try fields["message"].map { try string($0, "message") },
            code: try fields["code"].map { Int(try int64($0, "code").value) })
    }

    private static func object(_ value: Value, _ name: String) throws -> [String: Value] {
        guard case .object(let fields) = value else { throw Unreadable(description: "\(name) is not an object") }
        return fields
    }

    private static func string(_ value: Value, _ name: String) throws -> String {
        guard case .string(let text) = value else { throw Unreadable(description: "\(name) is not a string") }
        return text
    }

    private static func bool(_ value: Value, _ name: String) throws -> Bool {
        guard case .bool(let flag) = value else { throw Unreadable(description: "\(name) is not a boolean") }
        return flag
    }

    /// The gateway's string form, or a plain number, as `Int64String` reads it.
    private static func int64(_ value: Value, _ name: String) throws -> EtcdWire.Int64String {
        switch value {
        case .string(let text):
            guard let number = Int64(text) else { throw Unreadable(description: "\(name) is not an int64: \(text)") }
            return EtcdWire.Int64String(number)
        case .int(let number): return EtcdWire.Int64String(number)
        default: throw Unreadable(description: "\(name) is not an int64")
        }
    }

    private static func bytes(_ value: Value, _ name: String) throws -> Data {
        guard let data = Data(base64Encoded: try string(value, name)) else { throw Unreadable(description: "\(name) is not base64") }
        return data
    }
}
