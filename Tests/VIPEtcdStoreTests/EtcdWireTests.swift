import Foundation
import Testing
@testable import VIPEtcdStore

@Suite struct EtcdWireTests {
    /// The hand-written transaction says what `JSONEncoder` says, field for field, unset fields left out.
    @Test func handWrittenTransactionMatchesJSONEncoder() throws {
        // Bytes whose base64 holds "+" and "/", and a value with every byte.
        let key = Data([0xfb, 0xff, 0xbf]) + Data("/metalvip/claims/192.0.2.10".utf8)
        let value = Data((0...255).map { UInt8($0) })
        let requests = [
            EtcdWire.TxnRequest(compare: [], success: [], failure: []),
            EtcdWire.TxnRequest(
                compare: [
                    .init(key: key, target: "CREATE", result: "EQUAL", create_revision: .init(0)),
                    .init(key: key, target: "MOD", result: "EQUAL", mod_revision: .init(9_007_199_254_740_993)),
                    .init(key: Data(), target: "VERSION", result: "GREATER", version: .init(-1)),
                ],
                success: [
                    .init(request_put: .init(key: key, value: value)),
                    .init(request_put: .init(key: key, value: Data())),
                    .init(request_delete_range: .init(key: key)),
                    .init(request_range: .init(key: key, range_end: Data([0x30]), limit: .init(500), revision: .init(12), keys_only: false)),
                ],
                failure: [.init(request_range: .init(key: key, keys_only: true)), .init()]),
        ]
        for request in requests {
            let hand = try JSONSerialization.jsonObject(with: Data(request.json())) as? NSDictionary
            let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? NSDictionary
            #expect(hand != nil && hand == encoded, "\(String(decoding: request.json(), as: UTF8.self))")
        }
    }

    /// The watch line read by hand says what `JSONDecoder` says (but the header, which the watch does not
    /// use), for every shape the gateway sends, and refuses what `JSONDecoder` refuses.
    @Test func handReadWatchFramesMatchJSONDecoder() throws {
        let key = Data([0xfb, 0xff, 0xbf]) + Data("/metalvip/claims/192.0.2.10".utf8)
        let value = Data((0...255).map { UInt8($0) })
        let k = key.base64EncodedString(), v = value.base64EncodedString()
        let lines = [
            #"{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"12","raft_term":"3"},"created":true}}"#,
            #"{"result":{"header":{"revision":"12"},"events":[{"kv":{"key":"\#(k)","create_revision":"5","mod_revision":"12","version":"2","value":"\#(v)"}},"#
                + #"{"type":"DELETE","kv":{"key":"\#(k)","mod_revision":"12"}}]}}"#,
            #"{"result":{"events":[{"kv":{"key":"\#(k)","create_revision":5,"mod_revision":9007199254740993}}]}}"#,
            #"{"result":{"events":[{"kv":{"key":"","value":""}}]}}"#,
            #"{"result":{"canceled":true,"compact_revision":"40","cancel_reason":"mvcc: required revision has been compacted"}}"#,
            #"{"result":{"canceled":true}}"#,
            #"{"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token","http_status":"Unauthorized","code":16,"error":"etcdserver: invalid auth token"}}"#,
            #"{"result":{}}"#,
            #"{}"#,
        ]
        for line in lines {
            let data = Data(line.utf8)
            var decoded = try JSONDecoder().decode(EtcdWire.WatchFrame.self, from: data)
            decoded.result?.header = nil
            #expect(try EtcdWire.WatchFrame(line: data) == decoded, "\(line)")
        }
        let refused = [
            #"{"result":{"events":[{"kv":{"key":"not base64!"}}]}}"#,
            #"{"result":{"events":[{"kv":{"key":"\#(k)","mod_revision":"twelve"}}]}}"#,
            #"{"result":{"events":[{"kv":{"value":"\#(v)"}}]}}"#,
            #"{"result":{"canceled":"yes"}}"#,
            #"{"result":{"events":{}}}"#,
            #"{"result":"#,
            #"[]"#,
        ]
        for line in refused {
            let data = Data(line.utf8)
            #expect(throws: (any Error).self, "JSONDecoder: \(line)") { try JSONDecoder().decode(EtcdWire.WatchFrame.self, from: data) }
            #expect(throws: (any Error).self, "by hand: \(line)") { try EtcdWire.WatchFrame(line: data) }
        }
    }
}
