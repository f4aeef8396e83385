import ArgumentParser
import Foundation

/// A client that opens a new connection for every request, as a failover test wants: one HTTP GET per
/// connection, a fixed gap between requests, each bounded by its own timeout, the whole run bounded in count.
struct Requests: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "GET a URL over a new TCP connection every gap, COUNT times, and print one JSON line per request (start time on the monotonic clock, status, body, or the error).")

    @Option(help: "The address to connect to: IPv4 or IPv6 literal.") var address: String
    @Option(help: "The port.") var port: Int = 80
    @Option(help: "The request path.") var path = "/"
    @Option(help: "How many requests (at most 100000).") var count = 100
    @Option(help: "Milliseconds between the end of one request and the start of the next.") var gapMs = 20
    @Option(help: "Milliseconds each request may take, connect included.") var timeoutMs = 1000

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1-100000") }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1-65535") }
        guard timeoutMs > 0, gapMs >= 0 else { throw ValidationError("--timeout-ms must be > 0 and --gap-ms >= 0") }
    }

    func run() throws {
        guard let target = RequestTarget(address, port: port) else { throw ValidationError("invalid --address \(address)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\nUser-Agent: metalvip-lab\r\n\r\n".utf8)
        for _ in 0..<count {
            let started = monotonicNow()
            let outcome = Self.exchange(target, request, deadline: started + Int64(timeoutMs) * 1_000_000)
            var line: [String: Any] = ["atNs": started, "ms": Double(monotonicNow() - started) / 1e6]
            switch outcome {
            case .success(let response):
                line["status"] = response.status
                line["body"] = response.body
            case .failure(let error):
                line["status"] = 0
                line["error"] = error.description
            }
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))  // unbuffered: a killed loop keeps its lines
            if gapMs > 0 { usleep(UInt32(gapMs) * 1000) }
        }
    }

    struct Response { var status: Int; var body: String }

    struct RequestError: Error, CustomStringConvertible {
        var description: String
        init(_ text: String) { description = text }
    }

    /// Connect, send, read to the end, all before `deadline` (monotonic ns).
    static func exchange(_ target: RequestTarget, _ request: [UInt8], deadline: Int64) -> Result<Response, RequestError> {
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(RequestError("socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        let connected = target.withSockaddr { connect(fd, $0, $1) }
        if connected != 0 && errno != EINPROGRESS { return .failure(RequestError("connect: \(String(cString: strerror(errno)))")) }
        guard wait(fd, events: Int16(POLLOUT), deadline: deadline) else { return .failure(RequestError("connect: timed out")) }
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
        if soError != 0 { return .failure(RequestError("connect: \(String(cString: strerror(soError)))")) }
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 { sent += written; continue }
            if errno != EAGAIN { return .failure(RequestError("send: \(String(cString: strerror(errno)))")) }
            guard wait(fd, events: Int16(POLLOUT), deadline: deadline) else { return .failure(RequestError("send: timed out")) }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { received += buffer[..<count]; continue }
            if count == 0 { break }
            if errno != EAGAIN { return .failure(RequestError("recv: \(String(cString: strerror(errno)))")) }
            guard wait(fd, events: Int16(POLLIN), deadline: deadline) else { return .failure(RequestError("recv: timed out")) }
        }
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let statusLine = parts[0].split(separator: "\r\n").first.map(String.init) ?? ""
        let fields = statusLine.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let status = Int(fields[1]) else {
            return .failure(RequestError("no HTTP status line in \(received.count) bytes"))
        }
        return .success(Response(status: status, body: parts.dropFirst().joined(separator: "\r\n\r\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    static func wait(_ fd: Int32, events: Int16, deadline: Int64) -> Bool {
        while true {
            let remaining = (deadline - monotonicNow()) / 1_000_000
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(remaining, 60_000)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock the lab harness times faults with.
func monotonicNow() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

/// An IPv4 or IPv6 socket address from a literal.
struct RequestTarget {
    var family: Int32
    private var storage = sockaddr_storage()

    init?(_ text: String, port: Int) {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, bare, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeBytes(of: v4) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
        } else if inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeBytes(of: v6) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
        } else {
            return nil
        }
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = storage
        let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}
