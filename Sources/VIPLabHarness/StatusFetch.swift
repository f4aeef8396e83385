import Foundation
import VIPLink

/// One HTTP response from a status endpoint.
public struct StatusResponse: Sendable {
    public var status: Int
    public var body: String

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

extension LANLab {
    /// GETs `path` from 127.0.0.1:`port` inside a node's namespace, where that node's speaker serves its
    /// status endpoints: a plain HTTP/1.0 exchange on a thread that entered the namespace.
    public func fetch(node: Int, port: Int = 7473, path: String) async throws -> StatusResponse {
        try await fetch(namespace: "\(prefix)n\(node)", port: port, path: path)
    }

    /// The same inside any of the LAN's namespaces (the client's, say, where a test may run the controller).
    public func fetch(namespace: String, port: Int, path: String) async throws -> StatusResponse {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try NetworkNamespace.run(namespace) { try Self.get(port: port, path: path) }
                })
            }.start()
        }
    }

    /// GETs `path` from 127.0.0.1:`port` in this process's own namespace (the controller's).
    public static func fetch(port: Int, path: String) async throws -> StatusResponse {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try get(port: port, path: path) }) }.start()
        }
    }

    static func get(port: Int, path: String) throws -> StatusResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LabError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw LabError("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { throw LabError("send: \(String(cString: strerror(errno)))") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<10_000 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n"),
              let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) }) else {
            throw LabError("not an HTTP response from 127.0.0.1:\(port)\(path): \(text.prefix(80))")
        }
        return StatusResponse(status: status, body: String(text[headerEnd.upperBound...]))
    }
}
