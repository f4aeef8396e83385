import Testing
import VIPModel

@Suite struct HealthCheckSpecTests {
    private func service(_ annotations: [String: String]) -> Service {
        Service(meta: ObjectMeta(name: "web", annotations: annotations))
    }

    private func error(_ annotations: [String: String]) -> String? {
        do {
            _ = try service(annotations).healthCheck()
            return nil
        } catch {
            return error.description
        }
    }

    @Test func noAnnotationMeansNoCheck() throws {
        #expect(try service([:]).healthCheck() == nil)
        #expect(try service(["metallb.io/address-pool": "lan"]).healthCheck() == nil)
    }

    @Test func tcpWithDefaults() throws {
        let spec = try #require(try service(["metalvip.io/health-check": "tcp"]).healthCheck())
        #expect(spec == HealthCheckSpec(kind: .tcp, interval: .seconds(1), timeout: .milliseconds(500), fall: 2, rise: 2))
        #expect(spec.description == "tcp every 1s, timeout 500ms, fall 2, rise 2")
    }

    @Test func httpWithEveryTuningAnnotation() throws {
        let spec = try #require(try service([
            "metalvip.io/health-check": "http:/healthz?full=1",
            "metalvip.io/health-check-interval": "2m",
            "metalvip.io/health-check-timeout": "1.5s",
            "metalvip.io/health-check-fall": "3",
            "metalvip.io/health-check-rise": "100",
        ]).healthCheck())
        #expect(spec.kind == .http(path: "/healthz?full=1"))
        #expect(spec.interval == .seconds(120))
        #expect(spec.timeout == .milliseconds(1500))
        #expect(spec.fall == 3)
        #expect(spec.rise == 100)
        #expect(spec.description == "http:/healthz?full=1 every 2m, timeout 1500ms, fall 3, rise 100")
    }

    @Test func boundsAreInclusive() throws {
        let fastest = try #require(try service([
            "metalvip.io/health-check": "http:/",
            "metalvip.io/health-check-interval": "100ms",
            "metalvip.io/health-check-timeout": "100ms",
            "metalvip.io/health-check-fall": "1",
            "metalvip.io/health-check-rise": "1",
        ]).healthCheck())
        #expect(fastest == HealthCheckSpec(kind: .http(path: "/"), interval: .milliseconds(100), timeout: .milliseconds(100),
                                           fall: 1, rise: 1))
        let slowest = try #require(try service([
            "metalvip.io/health-check": "tcp", "metalvip.io/health-check-interval": "1h", "metalvip.io/health-check-timeout": "60m",
        ]).healthCheck())
        #expect(slowest.interval == .seconds(3600))
        #expect(slowest.timeout == .seconds(3600))
    }

    @Test(arguments: [
        ("udp", "metadata.annotations[metalvip.io/health-check]: unsupported value \"udp\": must be \"tcp\" or \"http:/PATH\""),
        ("TCP", "metadata.annotations[metalvip.io/health-check]: unsupported value \"TCP\": must be \"tcp\" or \"http:/PATH\""),
        ("", "metadata.annotations[metalvip.io/health-check]: unsupported value \"\": must be \"tcp\" or \"http:/PATH\""),
        ("http:", "metadata.annotations[metalvip.io/health-check]: HTTP path \"\" must start with \"/\""),
        ("http:healthz", "metadata.annotations[metalvip.io/health-check]: HTTP path \"healthz\" must start with \"/\""),
        ("http:/a b", "metadata.annotations[metalvip.io/health-check]: HTTP path \"/a b\" must not contain spaces, "
            + "control or non-ASCII characters (percent-encode them)"),
        ("http:/a\r\nX-Evil: 1", "metadata.annotations[metalvip.io/health-check]: HTTP path \"/a\\r\\nX-Evil: 1\" must not contain "
            + "spaces, control or non-ASCII characters (percent-encode them)"),
        ("http:/café", "metadata.annotations[metalvip.io/health-check]: HTTP path \"/café\" must not contain spaces, "
            + "control or non-ASCII characters (percent-encode them)"),
    ])
    func badKind(value: String, message: String) {
        #expect(error(["metalvip.io/health-check": value]) == message)
    }

    @Test(arguments: [
        ("1", "invalid duration \"1\": expected a number and a unit, like 500ms, 1s or 1.5s"),
        ("1 s", "invalid duration \"1 s\": expected a number and a unit, like 500ms, 1s or 1.5s"),
        ("1sec", "invalid duration \"1sec\": expected a number and a unit, like 500ms, 1s or 1.5s"),
        ("fast", "invalid duration \"fast\": expected a number and a unit, like 500ms, 1s or 1.5s"),
        ("99ms", "must be between 100ms and 1h, got \"99ms\""),
        ("0", "must be between 100ms and 1h, got \"0\""),
        ("-1s", "must be between 100ms and 1h, got \"-1s\""),
        ("1h1ns", "must be between 100ms and 1h, got \"1h1ns\""),
        ("2h", "must be between 100ms and 1h, got \"2h\""),
    ])
    func badInterval(value: String, message: String) {
        #expect(error(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-interval": value])
                == "metadata.annotations[metalvip.io/health-check-interval]: " + message)
    }

    @Test(arguments: [
        ("500", "invalid duration \"500\": expected a number and a unit, like 500ms, 1s or 1.5s"),
        ("0", "must be greater than 0, got \"0\""),
        ("0ms", "must be greater than 0, got \"0ms\""),
        ("-5ms", "must be greater than 0, got \"-5ms\""),
        ("1001ms", "1001ms is longer than the interval (1s): a check must end before the next one starts"),
    ])
    func badTimeout(value: String, message: String) {
        #expect(error(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-timeout": value])
                == "metadata.annotations[metalvip.io/health-check-timeout]: " + message)
    }

    @Test func timeoutIsComparedWithTheGivenInterval() throws {
        #expect(error(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-interval": "200ms"])
                == "metadata.annotations[metalvip.io/health-check-timeout]: 500ms is longer than the interval (200ms): "
                + "a check must end before the next one starts")
        let spec = try #require(try service(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-interval": "200ms",
                                             "metalvip.io/health-check-timeout": "200ms"]).healthCheck())
        #expect(spec.timeout == .milliseconds(200))
    }

    @Test(arguments: ["fall", "rise"], ["0", "101", "-1", "two", "1.5", ""])
    func badThreshold(name: String, value: String) {
        #expect(error(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-\(name)": value])
                == "metadata.annotations[metalvip.io/health-check-\(name)]: must be a whole number from 1 to 100, got \"\(value)\"")
    }

    @Test(arguments: ["interval", "timeout", "fall", "rise"])
    func tuningWithoutCheckIsAnError(name: String) {
        #expect(error(["metalvip.io/health-check-\(name)": "2"])
                == "metadata.annotations[metalvip.io/health-check-\(name)]: has no effect without metalvip.io/health-check")
    }

    @Test func surroundingSpacesAreIgnored() throws {
        let spec = try #require(try service(["metalvip.io/health-check": " tcp ", "metalvip.io/health-check-fall": " 4"]).healthCheck())
        #expect(spec.kind == .tcp)
        #expect(spec.fall == 4)
    }

    /// The annotation is checked when the document is read, so `metalvip apply` refuses it.
    @Test func serviceDocumentWithBadAnnotationIsRefused() throws {
        func document(_ annotations: [String: String]) -> Value {
            .object([
                "apiVersion": .string("v1"), "kind": .string("Service"),
                "metadata": .object(["name": .string("web"), "annotations": .object(annotations.mapValues { .string($0) })]),
                "spec": .object(["type": .string("LoadBalancer")]),
            ])
        }
        #expect(throws: FieldError(path: "metadata.annotations[metalvip.io/health-check-fall]",
                                   message: "must be a whole number from 1 to 100, got \"0\"")) {
            try Service(document: document(["metalvip.io/health-check": "tcp", "metalvip.io/health-check-fall": "0"]))
        }
        let service = try Service(document: document(["metalvip.io/health-check": "http:/ready"]))
        #expect(try service.healthCheck()?.kind == .http(path: "/ready"))
    }
}

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("0", Duration.zero), ("0s", .zero), ("500ms", .milliseconds(500)), ("1s", .seconds(1)), ("1.5s", .milliseconds(1500)),
        ("2m", .seconds(120)), ("1h", .seconds(3600)), ("1h30m", .seconds(5400)), ("1m0.5s", .milliseconds(60_500)),
        (".5s", .milliseconds(500)), ("1.s", .seconds(1)), ("0.3s", .milliseconds(300)), ("100us", .microseconds(100)),
        ("100µs", .microseconds(100)), ("7ns", .nanoseconds(7)), ("+2s", .seconds(2)), ("-2s", .seconds(-2)),
        ("1.0000000001s", .seconds(1)), ("0.1ns", .zero),
    ])
    func parses(text: String, expected: Duration) {
        #expect(GoDuration.parse(text) == expected)
    }

    @Test(arguments: ["", "-", "s", "1", "1.5", "1 s", "1sec", "1S", "1d", ".s", "1s ", "ms", "1h-1m",
                      "9999999999999h", "99999999999999999999ns"])
    func refuses(text: String) {
        #expect(GoDuration.parse(text) == nil)
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.milliseconds(500), "500ms"), (.seconds(1), "1s"), (.milliseconds(1500), "1500ms"),
        (.seconds(120), "2m"), (.seconds(90), "90s"), (.seconds(7200), "2h"), (.microseconds(3), "3us"), (.nanoseconds(5), "5ns"),
    ])
    func formats(duration: Duration, text: String) {
        #expect(GoDuration.format(duration) == text)
        #expect(GoDuration.parse(text) == duration)
    }
}
