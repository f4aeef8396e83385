#if canImport(Glibc)
import Glibc
#endif

/// A failed link-layer call. It names the interface (or namespace, or filter) and the C call, so a
/// speaker log line like `eth0 (index 2): bind: No such device (errno 19)` is actionable on its own.
public struct LinkError: Error, CustomStringConvertible, Sendable, Hashable {
    /// Interface name, `netns NAME` for namespace calls, or empty when no interface is involved.
    public var interface: String
    /// The interface index, when the call was about a specific one.
    public var interfaceIndex: Int32?
    /// The failing call: "socket", "SO_ATTACH_FILTER", "bind", "recv", "pcap_compile", "nl_cache_mngr_add", ...
    public var operation: String
    /// The errno of a failing system call; nil when the message comes from libpcap or libnl.
    public var errno: Int32?
    /// `strerror` text, or the library's own message.
    public var message: String

    public init(interface: String, interfaceIndex: Int32? = nil, operation: String, errno: Int32? = nil, message: String) {
        self.interface = interface
        self.interfaceIndex = interfaceIndex
        self.operation = operation
        self.errno = errno
        self.message = message
    }

    /// A system call failure with `strerror` text for `code`.
    static func system(_ interface: String, index: Int32? = nil, _ operation: String, errno code: Int32) -> LinkError {
        LinkError(interface: interface, interfaceIndex: index, operation: operation, errno: code,
                  message: String(cString: strerror(code)))
    }

    public var description: String {
        var subject = interface
        if let interfaceIndex { subject += subject.isEmpty ? "index \(interfaceIndex)" : " (index \(interfaceIndex))" }
        let prefix = subject.isEmpty ? "" : subject + ": "
        let suffix = errno.map { " (errno \($0))" } ?? ""
        return "\(prefix)\(operation): \(message)\(suffix)"
    }
}
