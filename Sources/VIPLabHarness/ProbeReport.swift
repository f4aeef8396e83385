import Foundation

/// What the client saw for one VIP: who answered, when answers moved, and whether two ever answered.
struct TargetReport: Codable {
    struct Transition: Codable {
        /// Monotonic time (ns) of the first answer from the new MAC.
        var atNs: Int64
        var from: String
        var to: String
        /// From the old MAC's last answer to the new MAC's first: the gap the client saw.
        var silenceNs: Int64
    }

    struct Gratuitous: Codable {
        var atNs: Int64
        var mac: String
        var operation: String
    }

    var requests = 0
    var answeredRequests = 0
    /// Replies per MAC.
    var replies: [String: Int] = [:]
    /// Request windows answered by more than one MAC: must stay 0.
    var doubleAnswers = 0
    var firstReplyNs: [String: Int64] = [:]
    var lastReplyNs: [String: Int64] = [:]
    var transitions: [Transition] = []
    var gratuitous: [Gratuitous] = []
    /// Request to reply, by kernel timestamps.
    var rttMedianNs: Int64?
    var rttP99Ns: Int64?
}

struct ProbeReport: Codable {
    var startNs: Int64
    var endNs: Int64
    var intervalNs: Int64
    var targets: [String: TargetReport]
}

/// One request the probe sent.
struct SentRequest {
    var target: String
    var realtimeNs: Int64
}

/// One ARP frame the capture saw.
struct CapturedARP {
    enum Kind { case reply, gratuitousRequest, gratuitousReply }
    var kind: Kind
    var senderIP: String
    var senderMAC: String
    /// Kernel receive timestamp, CLOCK_REALTIME.
    var realtimeNs: Int64
}

enum ProbeAnalysis {
    /// Attributes each reply to the request window it fell in ([send k, send k+1)), per target.
    static func report(sent: [SentRequest], captured: [CapturedARP], monotonicOffsetNs: Int64,
                       startNs: Int64, endNs: Int64, intervalNs: Int64) -> ProbeReport {
        var targets: [String: TargetReport] = [:]
        let sentByTarget = Dictionary(grouping: sent, by: \.target).mapValues { $0.map(\.realtimeNs).sorted() }
        for (target, times) in sentByTarget {
            var report = TargetReport()
            report.requests = times.count
            let replies = captured.filter { $0.kind == .reply && $0.senderIP == target }.sorted { $0.realtimeNs < $1.realtimeNs }
            var windows: [Int: Set<String>] = [:]
            var rtts: [Int64] = []
            for reply in replies {
                let mono = reply.realtimeNs - monotonicOffsetNs
                report.replies[reply.senderMAC, default: 0] += 1
                report.firstReplyNs[reply.senderMAC] = min(report.firstReplyNs[reply.senderMAC] ?? .max, mono)
                report.lastReplyNs[reply.senderMAC] = max(report.lastReplyNs[reply.senderMAC] ?? .min, mono)
                // The last request sent at or before the reply.
                var low = 0, high = times.count
                while low < high {
                    let middle = (low + high) / 2
                    if times[middle] <= reply.realtimeNs { low = middle + 1 } else { high = middle }
                }
                let window = low - 1
                guard window >= 0 else { continue }
                if windows[window] == nil { rtts.append(reply.realtimeNs - times[window]) }
                windows[window, default: []].insert(reply.senderMAC)
            }
            report.answeredRequests = windows.count
            report.doubleAnswers = windows.values.filter { $0.count > 1 }.count
            var previous: CapturedARP?
            for reply in replies {
                if let last = previous, last.senderMAC != reply.senderMAC {
                    report.transitions.append(TargetReport.Transition(
                        atNs: reply.realtimeNs - monotonicOffsetNs, from: last.senderMAC, to: reply.senderMAC,
                        silenceNs: reply.realtimeNs - last.realtimeNs))
                }
                previous = reply
            }
            report.gratuitous = captured.filter { $0.kind != .reply && $0.senderIP == target }.map {
                TargetReport.Gratuitous(atNs: $0.realtimeNs - monotonicOffsetNs, mac: $0.senderMAC,
                                        operation: $0.kind == .gratuitousRequest ? "request" : "reply")
            }
            rtts.sort()
            if !rtts.isEmpty {
                report.rttMedianNs = rtts[rtts.count / 2]
                report.rttP99Ns = rtts[min(rtts.count - 1, rtts.count * 99 / 100)]
            }
            targets[target] = report
        }
        return ProbeReport(startNs: startNs, endNs: endNs, intervalNs: intervalNs, targets: targets)
    }
}
