import VIPModel

/// The NDP option walker (RFC 4861 §4.6). Options are type/length(in 8-byte units)/data.
enum NDPOptions {
    static let sourceLinkLayerAddress: UInt8 = 1
    static let targetLinkLayerAddress: UInt8 = 2

    /// Validates every option in `start..<end` and returns the first link-layer address option of
    /// type `wanted`; later duplicates are ignored and unknown options skipped, as RFC 4861 and Linux do.
    ///
    /// Each step advances by at least 8 bytes (zero-length options are rejected before advancing),
    /// so the loop runs at most `(end - start) / 8 + 1` times.
    static func linkLayerAddress(
        ofType wanted: UInt8, in reader: FrameReader, from start: Int, to end: Int
    ) throws(DropReason) -> MACAddress? {
        try reader.require(start, end - start)
        var offset = start
        var found: MACAddress? = nil
        while offset < end {
            guard end - offset >= 2 else { throw .truncatedOption }
            let type = try reader.u8(offset)
            let units = Int(try reader.u8(offset + 1))
            guard units > 0 else { throw .badOptionLength }
            let length = units * 8
            guard length <= end - offset else { throw .truncatedOption }
            if type == wanted {
                // 2 bytes of header + 6-byte MAC: any other size is not an Ethernet address.
                guard units == 1 else { throw .badLinkLayerAddressOption }
                if found == nil { found = try reader.mac(offset + 2) }
            }
            offset += length
        }
        return found
    }
}
