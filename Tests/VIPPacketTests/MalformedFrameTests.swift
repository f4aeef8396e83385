import Testing
import VIPModel
import VIPPacket

/// Fires the shared hostile corpus at every parser. Reaching the end of a test is the main
/// assertion (nothing trapped); on top of that, whatever a parser accepts must satisfy the
/// invariants its caller relies on, and the replies built from it must parse back.
@Suite struct MalformedFrameTests {
    static let corpus = MalformedFrames.corpus(seed: 0x5EED_2026)

    @Test func corpusIsDeterministicAndLarge() {
        let again = MalformedFrames.corpus(seed: 0x5EED_2026, randomFrames: 1_000)
        let once = MalformedFrames.corpus(seed: 0x5EED_2026, randomFrames: 1_000)
        #expect(again == once)
        #expect(MalformedFrames.corpus(seed: 7, randomFrames: 1_000) != once)
        #expect(Self.corpus.count > 140_000)
        #expect(Self.corpus.contains([]))
        #expect(Self.corpus.allSatisfy { $0.count <= 300 })
    }

    @Test func validFramesAreValid() {
        let valid = MalformedFrames.validFrames
        #expect(valid.count == 10)
        for frame in valid {
            let accepted = [
                ARPCodec.parseRequest(frame).success != nil, ARPCodec.parseReply(frame).success != nil,
                NDPCodec.parseSolicitation(frame).success != nil, NDPCodec.parseAdvertisement(frame).success != nil,
            ]
            #expect(accepted.filter { $0 }.count == 1, "\(frame)")
        }
    }

    @Test func arpParsersSurviveCorpus() {
        var reasons: Set<DropReason> = []
        var acceptedRequests = 0, acceptedReplies = 0
        for frame in Self.corpus {
            switch ARPCodec.parseRequest(frame) {
            case .failure(let reason): reasons.insert(reason)
            case .success(let request):
                acceptedRequests += 1
                #expect(frame.count >= 42 && frame[12] == 0x08 && frame[13] == 0x06 && frame[20] == 0 && frame[21] == 1)
                #expect(request.senderIP.family == .ipv4 && request.targetIP.family == .ipv4)
                #expect(!request.senderMAC.isMulticast && request.senderMAC != .zero)
                // Whatever we accept, we can answer, and the answer is a well-formed reply.
                let reply = ARPCodec.parseReply(ARPCodec.reply(to: request, from: ourMAC))
                #expect(reply.success?.senderIP == request.targetIP)
                #expect(reply.success?.ethernetDestination == request.senderMAC)
            }
            switch ARPCodec.parseReply(frame) {
            case .failure(let reason): reasons.insert(reason)
            case .success: acceptedReplies += 1
            }
        }
        #expect(acceptedRequests > 0 && acceptedReplies > 0)
        let expected: Set<DropReason> = [
            .truncated, .vlanTagged, .invalidEthernetSource, .notARP, .badHardwareType, .badProtocolType,
            .badAddressLengths, .notRequest, .notReply, .invalidSenderMAC, .invalidSenderIP, .targetIsMulticast,
        ]
        #expect(reasons == expected)
    }

    @Test func ndpParsersSurviveCorpus() {
        var reasons: Set<DropReason> = []
        var acceptedSolicitations = 0, acceptedAdvertisements = 0
        for frame in Self.corpus {
            switch NDPCodec.parseSolicitation(frame) {
            case .failure(let reason): reasons.insert(reason)
            case .success(let ns):
                acceptedSolicitations += 1
                #expect(frame[21] == 255 && icmpChecksumVerifies(frame))
                #expect(ns.targetIP.value >> 120 != 0xFF && ns.sourceIP.value >> 120 != 0xFF)
                if ns.isDuplicateAddressDetection {
                    #expect(ns.sourceLinkLayerAddress == nil && NDPCodec.isSolicitedNodeGroup(ns.destinationIP))
                }
                let na = NDPCodec.advertisement(answering: ns, from: ourMAC)
                #expect(icmpChecksumVerifies(na))
                let parsed = NDPCodec.parseAdvertisement(na)
                #expect(parsed.success?.targetIP == ns.targetIP)
                #expect(parsed.success?.flags.contains(.solicited) == !ns.isDuplicateAddressDetection)
                #expect(parsed.success?.ethernetDestination.isMulticast == ns.isDuplicateAddressDetection)
            }
            switch NDPCodec.parseAdvertisement(frame) {
            case .failure(let reason): reasons.insert(reason)
            case .success:
                acceptedAdvertisements += 1
                #expect(frame[21] == 255 && icmpChecksumVerifies(frame))
            }
        }
        #expect(acceptedSolicitations > 0 && acceptedAdvertisements > 0)
        let arpOnly: Set<DropReason> = [
            .notARP, .badHardwareType, .badProtocolType, .badAddressLengths, .notRequest, .notReply, .invalidSenderIP,
        ]
        #expect(reasons == Set(DropReason.allCases).subtracting(arpOnly))
    }

    @Test func randomBufferAtEveryOffsetAndLength() {
        // Slices of one noisy buffer (a fixed LCG), so frames start at every alignment and lengths cover 0...200.
        var state: UInt64 = 99
        let noise: [UInt8] = (0..<4_096).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        noise.withUnsafeBytes { raw in
            for start in 0..<min(64, raw.count) {
                for length in stride(from: 0, through: min(200, raw.count - start), by: 7) {
                    let frame = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                    _ = ARPCodec.parseRequest(frame)
                    _ = ARPCodec.parseReply(frame)
                    _ = NDPCodec.parseSolicitation(frame)
                    _ = NDPCodec.parseAdvertisement(frame)
                }
            }
        }
    }
}
