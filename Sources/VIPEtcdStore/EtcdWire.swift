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

/// A watch line read by hand, through `JSONText` and `FieldReader`: every speaker reads every write of the
/// cluster through here, and `JSONDecoder` took 12 µs a one-event frame that `JSONText` parses in under 5
/// (release build). Only what the watch uses is read; the header is skipped.
extension EtcdWire.WatchFrame {
    init(line: Data) throws {
        let frame = try FieldReader(try JSONText.parse(line))
        self.init(result: try frame.object("result").map(Self.response), error: try frame.object("error").map(Self.errorBody))
    }

    private static func response(_ result: FieldReader) throws(FieldError) -> EtcdWire.WatchResponse {
        var events: [EtcdWire.Event]?
        if let items = try result.list("events") {
            events = []
            for (index, item) in items.enumerated() {
                events?.append(try event(FieldReader(item, path: "\(result.pathOf("events"))[\(index)]")))
            }
        }
        return EtcdWire.WatchResponse(header: nil, created: try result.bool("created"), canceled: try result.bool("canceled"),
                                      compact_revision: try int64(result, "compact_revision"),
                                      cancel_reason: try result.string("cancel_reason"), events: events)
    }

    private static func event(_ event: FieldReader) throws(FieldError) -> EtcdWire.Event {
        guard let kv = try event.object("kv") else { throw event.error("kv", "missing") }
        guard let key = try bytes(kv, "key") else { throw kv.error("key", "missing") }
        return EtcdWire.Event(
            type: try event.string("type"),
            kv: EtcdWire.KeyValue(key: key, value: try bytes(kv, "value"), create_revision: try int64(kv, "create_revision"),
                                  mod_revision: try int64(kv, "mod_revision"), version: try int64(kv, "version")))
    }

    private static func errorBody(_ body: FieldReader) throws(FieldError) -> EtcdWire.ErrorBody {
        EtcdWire.ErrorBody(error: try body.string("error"), message: try body.string("message"), code: try body.int("code"))
    }

    /// The gateway's string form, or a plain number, as `Int64String` reads it.
    private static func int64(_ fields: FieldReader, _ key: String) throws(FieldError) -> EtcdWire.Int64String? {
        switch fields.raw(key) {
        case nil: return nil
        case .string(let text)?:
            guard let number = Int64(text) else { throw fields.error(key, "not an int64: \(text)") }
            return EtcdWire.Int64String(number)
        case .int(let number)?: return EtcdWire.Int64String(number)
        case let other?: throw fields.error(key, "expected an int64, got \(other.typeName)")
        }
    }

    private static func bytes(_ fields: FieldReader, _ key: String) throws(FieldError) -> Data? {
        guard let text = try fields.string(key) else { return nil }
        guard let data = Data(base64Encoded: text) else { throw fields.error(key, "not base64") }
        return data
    }
}
