import Logging
import VIPModel

/// Checks a changing set of endpoints, each every `spec.interval`, and reports when one turns unhealthy or
/// healthy again. The owner of a VIP (and the node next in line) feeds it the endpoints it must check.
///
/// Checks are spread: each target's first check waits a fixed offset, derived from a hash of the target,
/// within its interval, so a thousand endpoints are not probed in the same instant. At most
/// `maxProbesInFlight` probes run at once; the others wait their turn in arrival order.
public actor HealthMonitor {
    /// Every health change, in the order they happened. Finishes on `stop()`.
    public nonisolated let transitions: AsyncStream<HealthTransition>
    public nonisolated let maxProbesInFlight: Int

    private let continuation: AsyncStream<HealthTransition>.Continuation
    private let prober: any HealthProber
    private let logger: Logger

    /// One running check loop; `id` tells a removed-and-re-added target's new loop from its old one.
    private struct Check {
        var id: UInt64
        var tracker: HealthTracker
        var task: Task<Void, Never>
    }

    private var checks: [HealthTarget: Check] = [:]
    private var nextID: UInt64 = 0
    private var probesInFlight = 0
    private var slotWaiters: [CheckedContinuation<Void, Never>] = []
    private var stopped = false

    public init(prober: any HealthProber, logger: Logger, maxProbesInFlight: Int = 64) {
        precondition(maxProbesInFlight >= 1, "at least one probe must be allowed in flight")
        self.prober = prober
        self.logger = logger
        self.maxProbesInFlight = maxProbesInFlight
        (transitions, continuation) = AsyncStream.makeStream(of: HealthTransition.self, bufferingPolicy: .unbounded)
    }

    deinit {
        for check in checks.values { check.task.cancel() }
        continuation.finish()
    }

    /// Makes `targets` the set being checked: new ones start (healthy, first check after their spread offset),
    /// removed ones stop. A target whose only change is its spec keeps its current health.
    public func update(targets: Set<HealthTarget>) {
        guard !stopped else { return }
        var carriedHealth: [Endpoint: Bool] = [:]
        for (target, check) in checks where !targets.contains(target) {
            check.task.cancel()
            checks[target] = nil
            carriedHealth[Endpoint(target)] = check.tracker.isHealthy
        }
        for target in targets where checks[target] == nil {
            nextID += 1
            let id = nextID
            let tracker = HealthTracker(fall: target.spec.fall, rise: target.spec.rise,
                                        healthy: carriedHealth[Endpoint(target)] ?? true)
            let offset = Self.firstCheckOffset(of: target)
            let task = Task { [weak self] in
                try? await Task.sleep(for: offset)
                while !Task.isCancelled {
                    let started = ContinuousClock.now
                    guard let monitor = self else { return }
                    await monitor.check(target, id: id)
                    try? await Task.sleep(until: started + target.spec.interval, clock: .continuous)
                }
            }
            checks[target] = Check(id: id, tracker: tracker, task: task)
        }
    }

    /// The addresses failing their checks, per service. An address counts as unhealthy when any of its
    /// checked ports is: the forwarding state removes the endpoint, not a single port of it.
    public func unhealthy() -> [ObjectKey: Set<IPAddress>] {
        var result: [ObjectKey: Set<IPAddress>] = [:]
        for (target, check) in checks where !check.tracker.isHealthy {
            result[target.service, default: []].insert(target.address)
        }
        return result
    }

    /// The targets being checked now.
    public var targets: Set<HealthTarget> { Set(checks.keys) }

    /// Cancels every check and finishes `transitions`. The monitor checks nothing afterwards.
    public func stop() {
        stopped = true
        for check in checks.values { check.task.cancel() }
        checks = [:]
        let waiters = slotWaiters
        slotWaiters = []
        probesInFlight += waiters.count
        for waiter in waiters { waiter.resume() }
        continuation.finish()
    }

    /// The first check's delay: a stable hash of the target scaled into [0, interval).
    /// FNV-1a rather than `Hasher`, whose per-process seed would move the offsets on every restart.
    public static func firstCheckOffset(of target: HealthTarget) -> Duration {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(target.service.namespacedName)|\(target.endpoint)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        let (seconds, attoseconds) = target.spec.interval.components
        let interval = UInt64(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        guard interval > 0 else { return .zero }
        return .nanoseconds(Int64(hash % interval))
    }

    /// One check of `target` by the loop `id`, waiting for a probe slot first.
    private func check(_ target: HealthTarget, id: UInt64) async {
        await acquireSlot()
        defer { releaseSlot() }
        guard !Task.isCancelled, checks[target]?.id == id else { return }
        let outcome = await prober.probe(target)
        guard !Task.isCancelled, var check = checks[target], check.id == id else { return }
        let change = check.tracker.record(success: outcome.isHealthy)
        checks[target] = check
        guard let healthy = change else { return }
        let streak = healthy
            ? "\(check.tracker.successesInARow) \(check.tracker.successesInARow == 1 ? "success" : "successes") in a row"
            : "\(check.tracker.failuresInARow) \(check.tracker.failuresInARow == 1 ? "failure" : "failures") in a row"
        let transition = HealthTransition(target: target, healthy: healthy, reason: "\(outcome) (\(streak))")
        let message: Logger.Message = "endpoint \(target) is \(healthy ? "healthy" : "unhealthy"): \(transition.reason)"
        if healthy { logger.notice(message) } else { logger.warning(message) }
        continuation.yield(transition)
    }

    private func acquireSlot() async {
        if probesInFlight < maxProbesInFlight || stopped {
            probesInFlight += 1
            return
        }
        // The releasing check hands its slot over, so the count stays as it is.
        await withCheckedContinuation { slotWaiters.append($0) }
    }

    private func releaseSlot() {
        if !slotWaiters.isEmpty && !stopped {
            slotWaiters.removeFirst().resume()
        } else {
            probesInFlight -= 1
        }
    }

    /// A target without its spec: what carries health across an annotation change.
    private struct Endpoint: Hashable {
        var service: ObjectKey
        var address: IPAddress
        var port: Int
        init(_ target: HealthTarget) {
            service = target.service
            address = target.address
            port = target.port
        }
    }
}
