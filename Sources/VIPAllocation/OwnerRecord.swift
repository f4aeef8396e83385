import VIPModel

extension AddressSpace {
    /// What one owner holds: at most one address per family, under one interned sharing profile.
    ///
    /// Plain values only (32 bytes), so records copy without reference counting.
    struct OwnerRecord: Sendable {
        private var ipv6Value: UInt128 = 0
        private var ipv4Value: UInt32 = 0
        /// Id in the address space's `ProfileTable`.
        var profile: Int32
        private var families: UInt8 = 0

        init(profile: Int32) {
            self.profile = profile
        }

        subscript(family: IPFamily) -> IPAddress? {
            get {
                switch family {
                case .ipv4: families & 1 == 0 ? nil : IPAddress(family: .ipv4, value: UInt128(ipv4Value))
                case .ipv6: families & 2 == 0 ? nil : IPAddress(family: .ipv6, value: ipv6Value)
                }
            }
            set {
                let bit: UInt8 = family == .ipv4 ? 1 : 2
                guard let newValue else { families &= ~bit; return }
                families |= bit
                if family == .ipv4 { ipv4Value = UInt32(truncatingIfNeeded: newValue.value) } else { ipv6Value = newValue.value }
            }
        }

        /// IPv4 first, then IPv6.
        var addresses: [IPAddress] { IPFamily.allCases.compactMap { self[$0] } }
    }
}
