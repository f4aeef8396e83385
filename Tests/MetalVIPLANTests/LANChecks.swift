import Testing
import VIPLabHarness

/// What every LAN test asks of a probed address: no request (or solicitation) was answered by two MACs,
/// and only speakers' MACs answered.
func checked(_ target: TargetReport?, _ lab: LANLab) throws -> TargetReport {
    let target = try #require(target)
    #expect(target.doubleAnswers == 0, "two MACs answered one request \(target.doubleAnswers) times")
    #expect(target.replies.keys.allSatisfy { lab.node(ofMAC: $0) != nil }, "only speakers' MACs answer")
    return target
}
