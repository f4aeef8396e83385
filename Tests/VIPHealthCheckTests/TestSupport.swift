import Foundation
import Logging
import Synchronization
import VIPHealthCheck
import VIPModel

/// A prober whose answers the test sets per address; records every call and how many ran at once.
final class ScriptedProber: HealthProber {
    struct State {
        var failing: Set<IPAddress> = []
        var delay: Duration = .zero
        var calls: [HealthTarget: [ContinuousClock.Instant]] = [:]
        var inFlight = 0
        var maxInFlight = 0
    }
    let state = Mutex(State())

    func probe(_ target: HealthTarget) async -> ProbeOutcome {
        let delay = state.withLock { state in
            state.calls[target, default: []].append(.now)
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
            return state.delay
        }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return state.withLock { state in
            state.inFlight -= 1
            return state.failing.contains(target.address) ? .refused : .healthy("connected")
        }
    }

    func setFailing(_ address: IPAddress, _ failing: Bool) {
        state.withLock { state in
            if failing { state.failing.insert(address) } else { state.failing.remove(address) }
        }
    }

    func calls(_ target: HealthTarget) -> Int { state.withLock { $0.calls[target]?.count ?? 0 } }
    func firstCall(_ target: HealthTarget) -> ContinuousClock.Instant? { state.withLock { $0.calls[target]?.first } }
    var totalCalls: Int { state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } } }
    var maxInFlight: Int { state.withLock { $0.maxInFlight } }
}

/// Keeps every log message, to check the exact lines the monitor writes.
struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorder.messages.withLock { $0.append("\(event.level) \(event.message)") }
    }
}

final class LogRecorder: Sendable {
    let messages = Mutex<[String]>([])
    var logger: Logger { Logger(label: "health-test") { _ in RecordingLogHandler(recorder: self) } }
    var lines: [String] { messages.withLock { $0 } }
}

/// Collects a monitor's transitions in the background, so tests can wait for them with a bound.
final class TransitionCollector: Sendable {
    let received = Mutex<[HealthTransition]>([])
    let finished = Mutex(false)

    init(_ stream: AsyncStream<HealthTransition>) {
        Task { [self] in
            for await transition in stream { received.withLock { $0.append(transition) } }
            finished.withLock { $0 = true }
        }
    }

    var all: [HealthTransition] { received.withLock { $0 } }
    var isFinished: Bool { finished.withLock { $0 } }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
func eventually(within limit: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

func address(_ text: String) -> IPAddress { IPAddress(text)! }

let web = ObjectKey(.service, namespace: "default", name: "web")
