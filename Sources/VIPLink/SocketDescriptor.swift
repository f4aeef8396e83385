#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A file descriptor shared by concurrent callers. `close()` defers the real close until in-flight calls
/// return, so a receive blocked in poll on another thread can never end up reading a reused descriptor number.
final class SocketDescriptor: Sendable {
    private struct State {
        var fd: Int32
        var users = 0
        var closing = false
    }

    private let state: Mutex<State>
    private let interface: String
    private let index: Int32

    init(_ fd: Int32, interface: String, index: Int32) {
        state = Mutex(State(fd: fd))
        self.interface = interface
        self.index = index
    }

    /// Runs `body` with the open descriptor; throws EBADF for `operation` once `close()` has been called.
    func withDescriptor<Result>(_ operation: String, _ body: (Int32) throws(LinkError) -> Result) throws(LinkError) -> Result {
        let fd = state.withLock { state -> Int32 in
            guard !state.closing else { return -1 }
            state.users += 1
            return state.fd
        }
        guard fd >= 0 else { throw LinkError.system(interface, index: index, operation, errno: EBADF) }
        defer { release() }
        return try body(fd)
    }

    /// Idempotent; the descriptor is released now, or when the last in-flight call returns.
    func close() {
        let fd = state.withLock { state -> Int32 in
            guard !state.closing else { return -1 }
            state.closing = true
            return state.users == 0 ? state.fd : -1
        }
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    private func release() {
        let fd = state.withLock { state -> Int32 in
            state.users -= 1
            return state.closing && state.users == 0 ? state.fd : -1
        }
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}
