import CLinuxShim
import CPcap

/// A pcap filter expression compiled to classic BPF for Ethernet frames, ready for `SO_ATTACH_FILTER`.
/// Compiling once up front lets bad expressions fail at configuration time with pcap's own message,
/// and keeps libpcap out of the socket's life entirely (no capture handle is ever opened).
public struct PacketFilter: Sendable, Hashable {
    /// One classic BPF instruction; the same layout as the kernel's `sock_filter` and pcap's `bpf_insn`.
    struct Instruction: Sendable, Hashable {
        var code: UInt16
        var jt: UInt8
        var jf: UInt8
        var k: UInt32
    }

    /// The expression this was compiled from, for logs.
    public let expression: String
    let instructions: [Instruction]

    public var instructionCount: Int { instructions.count }

    /// Compiles `expression` (tcpdump syntax, e.g. `arp and arp[6:2] = 1`); an empty expression accepts everything.
    public init(expression: String) throws(LinkError) {
        // A dead handle is all pcap_compile needs: it fixes the link type (Ethernet) without touching an interface.
        guard let pcap = pcap_open_dead(DLT_EN10MB, 65535) else {
            throw LinkError(interface: "", operation: "pcap_open_dead", message: "libpcap could not allocate a handle")
        }
        defer { pcap_close(pcap) }
        var program = bpf_program()
        guard pcap_compile(pcap, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            let reason = String(cString: pcap_geterr(pcap))
            throw LinkError(interface: "", operation: "pcap_compile", message: "\"\(expression)\": \(reason)")
        }
        defer { pcap_freecode(&program) }
        // The kernel refuses longer programs with a bare EINVAL; say why here, where the expression is known.
        guard program.bf_len <= UInt32(BPF_MAXINSNS) else {
            throw LinkError(interface: "", operation: "pcap_compile",
                            message: "\"\(expression)\": \(program.bf_len) instructions, the kernel accepts at most \(BPF_MAXINSNS)")
        }
        let compiled = UnsafeBufferPointer(start: program.bf_insns, count: Int(program.bf_len))
        self.expression = expression
        self.instructions = compiled.map { Instruction(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
    }

    /// Lends the program in the kernel's `sock_fprog` form; the pointer inside is valid only during `body`.
    func withSocketProgram<Result>(_ body: (inout sock_fprog) -> Result) -> Result {
        var filters = instructions.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
        let count = UInt16(truncatingIfNeeded: filters.count)
        return filters.withUnsafeMutableBufferPointer { buffer in
            var program = sock_fprog(len: count, filter: buffer.baseAddress)
            return body(&program)
        }
    }
}
