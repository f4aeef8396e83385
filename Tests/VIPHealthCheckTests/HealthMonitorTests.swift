import Foundation
import Testing
import VIPHealthCheck
import VIPModel

@Suite struct HealthMonitorTests {
    private func target(_ text: String, port: Int = 8080, interval: Duration = .milliseconds(100), fall: Int = 2, rise: Int = 2,
                        service: ObjectKey = web) -> HealthTarget {
        HealthTarget(service: service, address: address(text), port: port,
                     spec: HealthCheckSpec(kind: .tcp, interval: interval, timeout: .milliseconds(50), fall: fall, rise: rise))
    }

    @Test func transitionsAfterFallFailuresAndRiseSuccesses() async throws {
        let prober = ScriptedProber()
        let log = LogRecorder()
        let monitor = HealthMonitor(prober: prober, logger: log.logger)
        let collector = TransitionCollector(monitor.transitions)
        let sick = target("192.0.2.3", fall: 2, rise: 3)
        let well = target("2001:db8::4", fall: 2, rise: 3)
        prober.setFailing(sick.address, true)
        await monitor.update(targets: [sick, well])

        #expect(await eventually { collector.all.count == 1 })
        #expect(collector.all == [HealthTransition(target: sick, healthy: false, reason: "connection refused (2 failures in a row)")])
        #expect(prober.calls(sick) == 2, "the change comes on the second failure, not later")
        #expect(await monitor.unhealthy() == [web: [sick.address]])
        #expect(log.lines == ["warning endpoint 192.0.2.3:8080 of default/web is unhealthy: connection refused (2 failures in a row)"])

        let callsBeforeRecovery = prober.calls(sick)
        prober.setFailing(sick.address, false)
        #expect(await eventually { collector.all.count == 2 })
        #expect(collector.all.last == HealthTransition(target: sick, healthy: true, reason: "connected (3 successes in a row)"))
        #expect(prober.calls(sick) - callsBeforeRecovery <= 4, "back on the third success (one probe may have been in flight)")
        #expect(await monitor.unhealthy() == [:])
        #expect(log.lines.last == "notice endpoint 192.0.2.3:8080 of default/web is healthy: connected (3 successes in a row)")

        // The healthy IPv6 endpoint was checked all along and never changed.
        #expect(prober.calls(well) >= 4)
        #expect(collector.all.allSatisfy { $0.target == sick })
        await monitor.stop()
    }

    @Test func ipv6EndpointIsBracketedInLogs() async throws {
        let prober = ScriptedProber()
        let log = LogRecorder()
        let monitor = HealthMonitor(prober: prober, logger: log.logger)
        let sick = target("2001:db8::7", fall: 1)
        prober.setFailing(sick.address, true)
        await monitor.update(targets: [sick])
        #expect(await eventually { !log.lines.isEmpty })
        #expect(log.lines == ["warning endpoint [2001:db8::7]:8080 of default/web is unhealthy: connection refused (1 failure in a row)"])
        await monitor.stop()
    }

    @Test func unhealthyGroupsAddressesByService() async throws {
        let prober = ScriptedProber()
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger)
        let api = ObjectKey(.service, namespace: "shop", name: "api")
        let targets: Set = [target("192.0.2.3", fall: 1), target("192.0.2.3", port: 9090, fall: 1), target("192.0.2.4", fall: 1),
                            target("192.0.2.3", fall: 1, service: api), target("192.0.2.5", fall: 1, service: api)]
        prober.setFailing(address("192.0.2.3"), true)
        await monitor.update(targets: targets)
        #expect(await eventually { await monitor.unhealthy() == [web: [address("192.0.2.3")], api: [address("192.0.2.3")]] })
        await monitor.stop()
    }

    @Test func removedTargetsStopBeingProbed() async throws {
        let prober = ScriptedProber()
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger)
        let kept = target("192.0.2.3")
        let removed = [target("192.0.2.4"), target("192.0.2.5")]
        prober.setFailing(removed[0].address, true)
        await monitor.update(targets: Set([kept] + removed))
        #expect(await eventually { ([kept] + removed).allSatisfy { prober.calls($0) >= 3 } })
        #expect(await monitor.unhealthy() == [web: [removed[0].address]])

        await monitor.update(targets: [kept])
        #expect(await monitor.targets == [kept])
        #expect(await monitor.unhealthy() == [:], "a removed endpoint is no longer reported")
        try await Task.sleep(for: .milliseconds(150))  // a probe already in flight may still finish
        let removedCalls = removed.map(prober.calls)
        let keptCalls = prober.calls(kept)
        try await Task.sleep(for: .milliseconds(500))
        #expect(removed.map(prober.calls) == removedCalls)
        #expect(prober.calls(kept) >= keptCalls + 3)
        await monitor.stop()
    }

    @Test func aSpecChangeKeepsTheEndpointsHealth() async throws {
        let prober = ScriptedProber()
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger)
        let before = target("192.0.2.3", fall: 1)
        prober.setFailing(before.address, true)
        await monitor.update(targets: [before])
        #expect(await eventually { await monitor.unhealthy() == [web: [before.address]] })
        let after = target("192.0.2.3", interval: .milliseconds(200), fall: 3)
        await monitor.update(targets: [after])
        #expect(await monitor.targets == [after])
        #expect(await monitor.unhealthy() == [web: [before.address]])
        await monitor.stop()
    }

    @Test func probesInFlightStayWithinTheBound() async throws {
        let prober = ScriptedProber()
        prober.state.withLock { $0.delay = .milliseconds(40) }
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger, maxProbesInFlight: 4)
        let targets = Set((1...60).map { target("192.0.2.\($0)") })
        await monitor.update(targets: targets)
        // 60 targets every 100 ms would want 24 probes of 40 ms at once; only 4 may run.
        #expect(await eventually { prober.totalCalls >= 40 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(prober.maxInFlight == 4)
        await monitor.stop()
        let afterStop = prober.totalCalls
        try await Task.sleep(for: .milliseconds(300))
        #expect(prober.totalCalls == afterStop, "stop cancels the checks waiting for a slot too")
    }

    @Test func firstChecksAreSpreadOverTheInterval() async throws {
        let prober = ScriptedProber()
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger)
        let targets = (1...50).map { target("192.0.2.\($0)", interval: .seconds(1)) }
        let start = ContinuousClock.now
        await monitor.update(targets: Set(targets))
        #expect(await eventually(within: .seconds(3)) { targets.allSatisfy { prober.firstCall($0) != nil } })
        await monitor.stop()
        var delays: [Duration] = []
        for target in targets {
            let delay = try #require(prober.firstCall(target)) - start
            let offset = HealthMonitor.firstCheckOffset(of: target)
            // Not before its offset, and not much later (the machine is shared, so allow 300 ms).
            #expect(delay >= offset - .milliseconds(5), "\(target)")
            #expect(delay <= offset + .milliseconds(300), "\(target)")
            delays.append(delay)
        }
        #expect(delays.max()! - delays.min()! >= .milliseconds(600), "first checks spread over the 1 s interval")
    }

    @Test func offsetsAreStableAndEvenOverTheInterval() {
        let targets = (0..<1000).map { index in
            target(IPAddress(family: .ipv4, value: 0xC000_0200 + UInt128(index % 250)).description,
                   port: 8000 + index / 250, interval: .seconds(1))
        }
        var buckets = [Int](repeating: 0, count: 10)
        for target in targets {
            let offset = HealthMonitor.firstCheckOffset(of: target)
            #expect(offset >= .zero && offset < .seconds(1))
            #expect(HealthMonitor.firstCheckOffset(of: target) == offset)
            buckets[Int(offset / .milliseconds(100))] += 1
        }
        // 100 expected per tenth of the interval; a clump would put far more in one.
        #expect(buckets.allSatisfy { (60...140).contains($0) }, "\(buckets)")
        // The offset scales with the interval: the same target lands at the same fraction of it.
        let fast = target("192.0.2.9", interval: .milliseconds(100))
        let slow = target("192.0.2.9", interval: .seconds(10))
        #expect(HealthMonitor.firstCheckOffset(of: fast) < .milliseconds(100))
        #expect(HealthMonitor.firstCheckOffset(of: slow) < .seconds(10))
    }

    @Test func stopEndsTransitionsAndChecks() async throws {
        let prober = ScriptedProber()
        let monitor = HealthMonitor(prober: prober, logger: LogRecorder().logger)
        let collector = TransitionCollector(monitor.transitions)
        let one = target("192.0.2.3")
        await monitor.update(targets: [one])
        #expect(await eventually { prober.calls(one) >= 2 })
        await monitor.stop()
        #expect(await eventually { collector.isFinished })
        #expect(await monitor.targets.isEmpty)
        await monitor.update(targets: [one])
        #expect(await monitor.targets.isEmpty, "a stopped monitor starts nothing")
        let calls = prober.calls(one)
        try await Task.sleep(for: .milliseconds(300))
        #expect(prober.calls(one) <= calls + 1)
    }
}
