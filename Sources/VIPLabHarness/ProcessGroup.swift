import Foundation
import Glibc
import Synchronization

/// The long-running processes a lab started, by key: launched (inside a namespace when one is given),
/// looked up, signalled, and all killed at the end, so a failing test leaves nothing running.
final class ProcessGroup<Key: Hashable & Sendable>: @unchecked Sendable {
    private let processes = Mutex<[Key: Process]>([:])

    /// Starts `arguments` (through `ip netns exec` when `namespace` is set), stdout to `output` and stderr to
    /// `errors` (by default the same).
    @discardableResult
    func launch(_ key: Key, namespace: String?, _ arguments: [String], output: FileHandle,
                errors: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + arguments
        process.standardOutput = output
        process.standardError = errors ?? output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0[key] = process }
        return process
    }

    subscript(key: Key) -> Process? { processes.withLock { $0[key] } }

    var keys: [Key] { processes.withLock { Array($0.keys) } }

    /// Forgets the process (the caller ends it).
    func remove(_ key: Key) -> Process? { processes.withLock { $0.removeValue(forKey: key) } }

    func signal(_ key: Key, _ signal: Int32) {
        if let process = self[key] { Glibc.kill(process.processIdentifier, signal) }
    }

    /// SIGCONT (a stopped process cannot die) then SIGKILL to every process still running, and waits for each.
    func killAll() {
        for process in processes.withLock({ Array($0.values) }) where process.isRunning {
            Glibc.kill(process.processIdentifier, SIGCONT)
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
