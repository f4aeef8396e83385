import Foundation
import Synchronization
import Testing
import VIPModel
import VIPSpeaker

@Suite struct AnswerTableTests {
    /// The observer runs at the same stack depth on the thousandth change as on the first: calling it must not
    /// wrap it again (a reabstraction thunk per call made every change dearer and the stack deeper without end).
    @Test func theEntriesObserverCostsTheSameOnEveryChange() {
        let table = AnswerTable()
        let depths = Mutex<[Int]>([])
        table.onEntriesChange { depths.withLock { $0.append(Thread.callStackReturnAddresses.count) } }
        let address = IPAddress("192.0.2.10")!
        for round in 0..<1000 {
            _ = table.announce([address], on: [1: MACAddress(value: UInt64(round + 1))], epoch: table.epoch)
            table.withdraw([address])
        }
        let seen = depths.withLock { $0 }
        #expect(seen.count == 2000)
        #expect(Set(seen).count == 1, "stack depth at the observer went from \(seen.first ?? 0) to \(seen.last ?? 0)")
    }
}
