#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call, kept with its path and errno so the store can say exactly what went wrong.
struct SystemError: Error, Sendable, CustomStringConvertible {
    var operation: String
    var path: String
    var code: Int32

    init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// One name in a directory listing, typed without an extra `stat` where the file system tells us.
struct DirectoryEntry: Sendable, Hashable {
    enum Kind: Sendable, Hashable { case directory, file, other }
    var name: String
    var kind: Kind
}

/// Thin wrappers over the POSIX calls the store needs. Plain syscalls rather than Foundation keep
/// `get` to one open/read/close and let us control fsync and rename exactly.
enum FileSystem {
    /// Temp files start with this, so every reader can ignore them and writers can sweep old ones.
    static let tempPrefix = ".tmp-"

    /// Whole contents of a file, or nil when it does not exist.
    static func read(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SystemError("open", path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("fstat", path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw SystemError("read", path, code: EISDIR) }
        var buffer = [UInt8](repeating: 0, count: max(Int(info.st_size), 0) + 1)
        var used = 0
        while true {
            if used == buffer.count { buffer.append(contentsOf: repeatElement(0, count: max(buffer.count, 4096))) }
            let n = buffer.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + used, raw.count - used)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path)
            }
            if n == 0 { break }
            used += n
        }
        buffer.removeSubrange(used...)
        return buffer
    }

    /// Replaces `directory/name` atomically: readers see the old file or the new one, never a mix.
    /// With `sync` the data is on disk before the rename; the caller fsyncs the directory.
    static func writeAtomically(directory: String, name: String, bytes: [UInt8], sync: Bool) throws {
        let temp = directory + "/" + tempPrefix + uniqueSuffix()
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("create", temp) }
        var failure: SystemError?
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + written, raw.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = SystemError("write", temp)
                break
            }
            written += n
        }
        if failure == nil, sync, fsync(fd) != 0 { failure = SystemError("fsync", temp) }
        if close(fd) != 0, failure == nil { failure = SystemError("close", temp) }
        if failure == nil, rename(temp, directory + "/" + name) != 0 {
            failure = SystemError("rename", directory + "/" + name)
        }
        if let failure {
            unlink(temp)
            throw failure
        }
    }

    /// Makes renames and unlinks in `path` durable.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", path) }
    }

    /// Flushes a file already written and closed.
    static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", path) }
    }

    /// Creates a directory; true when it was created, false when it already existed.
    @discardableResult
    static func makeDirectory(_ path: String) throws -> Bool {
        if mkdir(path, 0o700) == 0 { return true }
        if errno == EEXIST {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return false }
            throw SystemError("mkdir", path, code: ENOTDIR)
        }
        throw SystemError("mkdir", path)
    }

    /// Names in a directory except `.` and `..`; nil when the directory does not exist.
    static func list(_ path: String) throws -> [DirectoryEntry]? {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return nil }
            throw SystemError("opendir", path)
        }
        defer { closedir(dir) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let kind: DirectoryEntry.Kind
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_REG): kind = .file
            case Int32(DT_UNKNOWN): kind = statKind(path + "/" + name)
            default: kind = .other
            }
            entries.append(DirectoryEntry(name: name, kind: kind))
        }
        return entries
    }

    static func statKind(_ path: String) -> DirectoryEntry.Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .other }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        default: return .other
        }
    }

    /// Seconds since the epoch of the last modification, or nil when the file is gone.
    static func modificationTime(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_mtim.tv_sec)
    }

    static func now() -> Int { Int(time(nil)) }

    /// Removes a file; a file that is already gone is not an error.
    static func remove(_ path: String) throws {
        if unlink(path) != 0, errno != ENOENT { throw SystemError("unlink", path) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// pid plus a random part: unique across processes and threads sharing the directory.
    private static func uniqueSuffix() -> String {
        "\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }
}
