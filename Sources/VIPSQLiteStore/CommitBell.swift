#if canImport(Glibc)
import Glibc
#endif
import VIPStore

/// A one-byte file beside the database that every writer touches after each commit: a watch sleeps on
/// inotify for that file alone, so one commit wakes it exactly once, after the data is readable. Watching
/// the log instead woke it on each of a commit's page writes, before the commit was visible.
///
/// A writer that does not ring (another program, an older MetalVIP) is still seen by the watch's
/// periodic read, only later.
final class CommitBell: Sendable {
    static let suffix = "-commits"

    let path: String
    private let descriptor: Int32

    init(databasePath: String) throws {
        path = databasePath + Self.suffix
        descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError.unavailable("\(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(descriptor) }

    /// One write, never flushed: only its inotify event matters.
    func ring() {
        var byte: UInt8 = 1
        _ = pwrite(descriptor, &byte, 1, 0)
    }
}
