import Testing
import VIPModel
import VIPPacket

@Suite struct InternetChecksumTests {
    /// The worked example from RFC 1071 §3.
    @Test func rfc1071Example() {
        var checksum = InternetChecksum()
        checksum.add([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7])
        #expect(checksum.foldedSum == 0xDDF2)
        #expect(checksum.checksum == 0x220D)
    }

    @Test func piecewiseOddSplitsMatchOneShot() {
        let data: [UInt8] = (0..<61).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var whole = InternetChecksum()
        whole.add(data)
        #expect(whole.foldedSum == referenceOnesComplementSum(data))
        for split in [1, 2, 3, 7, 30, 31, 60] {
            var pieces = InternetChecksum()
            pieces.add(Array(data[..<split]))
            pieces.add([])
            pieces.add(Array(data[split...]))
            #expect(pieces.foldedSum == whole.foldedSum, "split at \(split)")
        }
    }

    @Test func wordsAfterAnOddByteStayInNetworkOrder() {
        var mixed = InternetChecksum()
        mixed.add([0x12])
        mixed.add(UInt16(0x3456))
        mixed.add(UInt32(0x789A_BCDE))
        #expect(mixed.foldedSum == referenceOnesComplementSum([0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE]))
    }

    @Test func insertedChecksumVerifies() {
        var data: [UInt8] = [0x45, 0x00, 0x00, 0x1C, 0xFF, 0xFF, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00]
        var sum = InternetChecksum()
        sum.add(data)
        data[10] = UInt8(sum.checksum >> 8)
        data[11] = UInt8(sum.checksum & 0xFF)
        var verify = InternetChecksum()
        verify.add(data)
        #expect(verify.isValid)
        #expect(referenceOnesComplementSum(data) == 0xFFFF)
    }

    @Test func pseudoHeaderMatchesReference() {
        let source = ip("fe80::1"), destination = ip("ff02::1:ff00:10")
        let message: [UInt8] = [135, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 20)
        let reference = ~referenceOnesComplementSum(
            addressBytes(source) + addressBytes(destination) + [0, 0, 0, 24, 0, 0, 0, 58] + message)
        let ours = message.withUnsafeBytes { InternetChecksum.icmpv6(source: source, destination: destination, message: $0) }
        #expect(ours == reference)
    }
}
