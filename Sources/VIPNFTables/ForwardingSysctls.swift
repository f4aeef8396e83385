#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The kernel switches the data path needs: a VIP's packets are routed (DNAT), not delivered locally.
/// Read and written under /proc/sys/net, which shows the calling thread's network namespace.
public enum ForwardingSysctls {
    public struct Setting: Sendable, Hashable {
        /// As `sysctl` names it.
        public var name: String
        public var path: String
    }

    public static let settings = [
        Setting(name: "net.ipv4.ip_forward", path: "/proc/sys/net/ipv4/ip_forward"),
        Setting(name: "net.ipv6.conf.all.forwarding", path: "/proc/sys/net/ipv6/conf/all/forwarding"),
    ]

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var name: String
        public var path: String
        public var reason: String
        public var description: String { "sysctl \(name) (\(path)): \(reason)" }
    }

    /// Turns on every setting that is off; returns the names it changed (empty when all were on).
    public static func enable() throws -> [String] {
        var changed: [String] = []
        for setting in settings where try read(setting) != "1" {
            do {
                try "1\n".write(toFile: setting.path, atomically: false, encoding: .utf8)
            } catch {
                throw Failure(name: setting.name, path: setting.path, reason: "cannot write 1: \(error.localizedDescription)")
            }
            changed.append(setting.name)
        }
        return changed
    }

    /// The settings that are off (or unreadable): what /readyz names when MetalVIP leaves sysctls alone.
    public static func missing() -> [String] {
        settings.filter { (try? read($0)) != "1" }.map(\.name)
    }

    static func read(_ setting: Setting) throws -> String {
        do {
            return try String(contentsOfFile: setting.path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw Failure(name: setting.name, path: setting.path, reason: "cannot read: \(error.localizedDescription)")
        }
    }
}
