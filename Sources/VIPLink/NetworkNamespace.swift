#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import Dispatch
import Foundation
import Synchronization

/// Runs code inside a named network namespace (`ip netns add NAME`, i.e. /var/run/netns/NAME).
/// `setns` switches only the calling thread, so each call gets a fresh dedicated Thread that enters the
/// namespace, runs `body`, and exits: no thread (least of all a concurrency-pool thread) is left switched.
/// Sockets and LinkMonitors created in `body` stay in that namespace and may be used from any thread afterwards.
public enum NetworkNamespace {
    public static let directory = "/var/run/netns"

    /// Blocks the caller until `body` returns on the namespace thread, then returns its result or rethrows.
    /// Throws LinkError (interface `netns NAME`, operation "open" or "setns") when the namespace cannot be entered.
    public static func run<T: Sendable>(_ name: String, _ body: @Sendable @escaping () throws -> T) throws -> T {
        let subject = "netns \(name)"
        // A name is one path component: no escaping /var/run/netns.
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw LinkError.system(subject, "open", errno: EINVAL)
        }
        let fd = open(directory + "/" + name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LinkError.system(subject, "open", errno: errno) }
        defer { close(fd) }

        let outcome = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            guard setns(fd, Int32(CLONE_NEWNET)) == 0 else {
                outcome.set(.failure(LinkError.system(subject, "setns", errno: errno)))
                return
            }
            outcome.set(Result { try body() })
        }
        thread.name = "metalvip-netns"
        thread.start()
        done.wait()
        return try outcome.take().get()
    }

    /// Hands the namespace thread's result back to the waiting caller.
    private final class Outcome<T: Sendable>: Sendable {
        private let value = Mutex<Result<T, any Error>?>(nil)
        func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }
        func take() -> Result<T, any Error> {
            value.withLock { $0 } ?? .failure(LinkError(interface: "", operation: "setns", message: "namespace thread ended without a result"))
        }
    }
}
