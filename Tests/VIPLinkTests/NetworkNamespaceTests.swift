#if canImport(Glibc)
import Glibc
#endif
import Testing
import VIPLink

/// Interface names as the calling thread's network namespace sees them.
private func interfaceNames() -> Set<String> {
    guard let list = if_nameindex() else { return [] }
    defer { if_freenameindex(list) }
    var names: Set<String> = []
    var entry = list
    while entry.pointee.if_index != 0, names.count < 10_000 {
        names.insert(String(cString: entry.pointee.if_name))
        entry += 1
    }
    return names
}

extension NamespaceTests {
    @Suite struct NetworkNamespaceTests {
        @Test func seesOnlyTheNamespacesInterfaces() throws {
            let net = try VethPair()
            defer { net.remove() }
            let before = interfaceNames()
            #expect(try NetworkNamespace.run(net.b) { interfaceNames() } == ["lo", VethPair.interfaceB])
            #expect(try NetworkNamespace.run(net.a) { interfaceNames() } == ["lo", VethPair.interfaceA])
            // The caller's thread never switched.
            #expect(interfaceNames() == before)
            #expect(!before.contains(VethPair.interfaceB))
            let monitor = try NetworkNamespace.run(net.a) { try LinkMonitor() }
            defer { monitor.stop() }
            #expect(Set(monitor.links().map(\.name)) == ["lo", VethPair.interfaceA])
        }

        @Test func rethrowsTheBodysError() throws {
            struct Marker: Error {}
            let net = try VethPair()
            defer { net.remove() }
            #expect(throws: Marker.self) { try NetworkNamespace.run(net.a) { throw Marker() } }
        }

        @Test func missingNamespaceNamesItAndTheCall() throws {
            try requireRoot()
            let name = "\(VethPair.prefix)\(getpid())missing"
            let error = #expect(throws: LinkError.self) { try NetworkNamespace.run(name) { 1 } }
            #expect(error?.interface == "netns \(name)")
            #expect(error?.operation == "open")
            #expect(error?.errno == ENOENT)

            let escape = #expect(throws: LinkError.self) { try NetworkNamespace.run("../../proc/1/ns/net") { 1 } }
            #expect(escape?.errno == EINVAL)
        }
    }
}
