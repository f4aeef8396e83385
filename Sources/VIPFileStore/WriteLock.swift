#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VIPStore

/// The writers' mutex: an exclusive `flock` on `.meta/lock`. Each acquisition opens its own descriptor,
/// because flock belongs to the open file description: two instances, tasks or threads in one
/// process then exclude each other exactly as separate processes do. Readers never take it.
struct WriteLock: Sendable {
    static let fileName = "lock"
    /// How long a writer waits before calling the store unavailable (a hung writer elsewhere).
    static let timeoutNanoseconds: UInt64 = 30_000_000_000

    let path: String

    init(metaDirectory: String) throws {
        path = metaDirectory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.unavailable(SystemError("open", path).description) }
        close(fd)
    }

    /// Runs `body` holding the lock, waiting with async sleeps so no cooperative thread blocks in flock.
    func withLock<T>(_ body: () throws -> T) async throws -> T {
        let fd = try openLockFile()
        defer { close(fd) }
        var delay: UInt64 = 50_000
        var waited: UInt64 = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw StoreError.unavailable(SystemError("flock", path).description)
            }
            guard waited < Self.timeoutNanoseconds else {
                throw StoreError.unavailable("timed out after 30s waiting for the write lock \(path)")
            }
            try await Task.sleep(nanoseconds: delay)
            waited += delay
            delay = min(delay * 2, 2_000_000)
        }
        return try body()
    }

    /// Blocking variant for `init` and for callers on their own threads.
    func withLockBlocking<T>(_ body: () throws -> T) throws -> T {
        let fd = try openLockFile()
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StoreError.unavailable(SystemError("flock", path).description) }
        }
        return try body()
    }

    private func openLockFile() throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.unavailable(SystemError("open", path).description) }
        return fd
    }
}
