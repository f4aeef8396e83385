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
}
