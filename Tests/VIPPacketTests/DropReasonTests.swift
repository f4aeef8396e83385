import Testing
import VIPPacket

@Suite struct DropReasonTests {
    @Test func labelsAreUniqueSnakeCase() {
        let labels = DropReason.allCases.map(\.label)
        #expect(Set(labels).count == labels.count)
        for label in labels {
            #expect(!label.isEmpty && label.count <= 48, "\(label)")
            #expect(label.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }, "\(label)")
            #expect(label.first != "_" && label.last != "_" && !label.contains("__"), "\(label)")
        }
        #expect(DropReason.hopLimitNot255.label == "hop_limit_not_255")
        #expect(DropReason.vlanTagged.description == "vlan_tagged")
    }
}
