import Testing
import VIPModel

@Suite struct AddressCountTests {
    @Test func arithmeticAndFormatting() {
        let max = AddressCount(UInt128.max)
        let full = max + 1
        #expect(full == AddressCount.allIPv6)
        #expect(full > max)
        #expect(full.exactValue == nil)
        #expect(max.exactValue == UInt128.max)
        #expect(full - 1 == max)
        #expect((full + full).description == "680564733841876926926749214863536422912")
        #expect(AddressCount(0).description == "0")
        #expect(AddressCount(12345).description == "12345")
        #expect((full + 10_000_000_000_000_000_000).description == "340282366920938463473374607431768211456")
        #expect(full.doubleValue == 0x1p128)
    }

    @Test func subtractionSaturatesAtZero() {
        #expect(AddressCount(3) - AddressCount(5) == .zero)
        var count: AddressCount = 10
        count -= 4
        count += 1
        #expect(count == 7)
        count -= 100
        #expect(count == .zero)
    }
}
