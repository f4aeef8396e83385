import Foundation

/// What the client saw for one VIP: who answered, when answers moved, and whether two ever answered.
public struct TargetReport: Codable, Sendable {
    public struct Transition: Codable, Sendable {
        /// Monotonic time (ns) of the first answer from the new MAC.
        public var atNs: Int64
        public var from: String
        public var to: String
        /// From the old MAC's last answer to the new MAC's first: the gap the client saw.
        public var silenceNs: Int64
    }

    public struct Gratuitous: Codable, Sendable {
        public var atNs: Int64
        public var mac: String
        /// "request" or "reply" for gratuitous ARP, "advertisement" for an unsolicited Neighbor Advertisement.
        public var operation: String
        /// Advertisements only: the R/S/O flags as letters ("O" for an unsolicited override).
        public var flags: String?
        /// Advertisements only: the target link-layer address option, if any.
        public var targetLinkLayerAddress: String?
    }

    /// What one MAC's solicited advertisements said (IPv6 targets), each value with how often it was seen:
    /// lets a test check the fields, not only who answered.
    public struct Advertisements: Codable, Sendable {
        /// Flag sets as letters: "SO" is solicited + override.
        public var flags: [String: Int] = [:]
        /// Target link-layer address options ("none" when absent).
        public var targetLinkLayerAddresses: [String: Int] = [:]
        /// IPv6 destinations.
        public var destinations: [String: Int] = [:]
    }

    public var requests = 0
    public var answeredRequests = 0
    /// Replies per MAC.
    public var replies: [String: Int] = [:]
    /// Request windows answered by more than one MAC: must stay 0.
    public var doubleAnswers = 0
    public var firstReplyNs: [String: Int64] = [:]
    public var lastReplyNs: [String: Int64] = [:]
    public var transitions: [Transition] = []
    /// The longest time between two consecutive replies, whoever sent them: a pause the client saw even
    /// when the owner did not change (a store outage, an etcd leader election).
    public var longestSilenceNs: Int64?
    public var gratuitous: [Gratuitous] = []
    /// Request to reply, by kernel timestamps: the responder alone, without the client's own wakeup.
    public var rttMedianNs: Int64?
    public var rttP99Ns: Int64?
    /// Request to reply as the client program sees it (like arping): includes the client's wakeup.
    public var applicationRTTMedianNs: Int64?
    /// IPv6 targets only: the solicited advertisements' fields, per answering MAC (nil for IPv4).
    public var advertisements: [String: Advertisements]?
}

public struct ProbeReport: Codable, Sendable {
    public var startNs: Int64
    public var endNs: Int64
    public var intervalNs: Int64
    public var targets: [String: TargetReport]
}

/// One request the probe sent.
public struct SentRequest: Sendable {
    public var target: String
    public var realtimeNs: Int64
    public var monotonicNs: Int64

    public init(target: String, realtimeNs: Int64, monotonicNs: Int64) {
        self.target = target
        self.realtimeNs = realtimeNs
        self.monotonicNs = monotonicNs
    }
}

/// One ARP frame or Neighbor Advertisement the capture saw (an advertisement's sender IP is its target).
public struct CapturedARP: Sendable {
    public enum Kind: Sendable { case reply, gratuitousRequest, gratuitousReply, unsolicitedAdvertisement }

    /// The fields of a Neighbor Advertisement that ARP has no counterpart for.
    public struct AdvertisementFields: Sendable {
        public var flags: String
        public var targetLinkLayerAddress: String?
        public var destinationIP: String

        public init(flags: String, targetLinkLayerAddress: String?, destinationIP: String) {
            self.flags = flags
            self.targetLinkLayerAddress = targetLinkLayerAddress
            self.destinationIP = destinationIP
        }
    }

    public var kind: Kind
    public var senderIP: String
    public var senderMAC: String
    /// Kernel receive timestamp, CLOCK_REALTIME.
    public var realtimeNs: Int64
    /// When the capture handed it to the program, CLOCK_MONOTONIC.
    public var deliveredNs: Int64
    /// Nil for ARP.
    public var advertisement: AdvertisementFields?

    public init(kind: Kind, senderIP: String, senderMAC: String, realtimeNs: Int64, deliveredNs: Int64,
                advertisement: AdvertisementFields? = nil) {
        self.kind = kind
        self.senderIP = senderIP
        self.senderMAC = senderMAC
        self.realtimeNs = realtimeNs
        self.deliveredNs = deliveredNs
        self.advertisement = advertisement
    }
}

public enum ProbeAnalysis {
    /// Attributes each reply to the request window it fell in ([send k, send k+1)), per target.
    public static func report(sent: [SentRequest], captured: [CapturedARP], monotonicOffsetNs: Int64,
                       startNs: Int64, endNs: Int64, intervalNs: Int64) -> ProbeReport {
        var targets: [String: TargetReport] = [:]
        let sentByTarget = Dictionary(grouping: sent, by: \.target).mapValues { $0.sorted { $0.realtimeNs < $1.realtimeNs } }
        for (target, requests) in sentByTarget {
            let times = requests.map(\.realtimeNs)
            var report = TargetReport()
            report.requests = times.count
            let replies = captured.filter { $0.kind == .reply && $0.senderIP == target }.sorted { $0.realtimeNs < $1.realtimeNs }
            var windows: [Int: Set<String>] = [:]
            var rtts: [Int64] = []
            var applicationRTTs: [Int64] = []
            for reply in replies {
                let mono = reply.realtimeNs - monotonicOffsetNs
                report.replies[reply.senderMAC, default: 0] += 1
                if let fields = reply.advertisement {
                    var all = report.advertisements ?? [:]
                    all[reply.senderMAC, default: TargetReport.Advertisements()].flags[fields.flags, default: 0] += 1
                    all[reply.senderMAC]?.targetLinkLayerAddresses[fields.targetLinkLayerAddress ?? "none", default: 0] += 1
                    all[reply.senderMAC]?.destinations[fields.destinationIP, default: 0] += 1
                    report.advertisements = all
                }
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
                if windows[window] == nil {
                    rtts.append(reply.realtimeNs - times[window])
                    applicationRTTs.append(reply.deliveredNs - requests[window].monotonicNs)
                }
                windows[window, default: []].insert(reply.senderMAC)
            }
            report.answeredRequests = windows.count
            report.doubleAnswers = windows.values.filter { $0.count > 1 }.count
            var previous: CapturedARP?
            for reply in replies {
                if let last = previous {
                    report.longestSilenceNs = max(report.longestSilenceNs ?? 0, reply.realtimeNs - last.realtimeNs)
                }
                if let last = previous, last.senderMAC != reply.senderMAC {
                    report.transitions.append(TargetReport.Transition(
                        atNs: reply.realtimeNs - monotonicOffsetNs, from: last.senderMAC, to: reply.senderMAC,
                        silenceNs: reply.realtimeNs - last.realtimeNs))
                }
                previous = reply
            }
            report.gratuitous = captured.filter { $0.kind != .reply && $0.senderIP == target }.map {
                TargetReport.Gratuitous(atNs: $0.realtimeNs - monotonicOffsetNs, mac: $0.senderMAC,
                                        operation: Self.operation($0.kind), flags: $0.advertisement?.flags,
                                        targetLinkLayerAddress: $0.advertisement?.targetLinkLayerAddress)
            }
            rtts.sort()
            applicationRTTs.sort()
            if !rtts.isEmpty {
                report.rttMedianNs = rtts[rtts.count / 2]
                report.rttP99Ns = rtts[min(rtts.count - 1, rtts.count * 99 / 100)]
                report.applicationRTTMedianNs = applicationRTTs[applicationRTTs.count / 2]
            }
            targets[target] = report
        }
        return ProbeReport(startNs: startNs, endNs: endNs, intervalNs: intervalNs, targets: targets)
    }

    static func operation(_ kind: CapturedARP.Kind) -> String {
        switch kind {
        case .gratuitousRequest: "request"
        case .gratuitousReply, .reply: "reply"
        case .unsolicitedAdvertisement: "advertisement"
        }
    }
}
