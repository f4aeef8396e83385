extension AddressSpace {
    /// Sharing profiles interned to small ids, counted by the owners using them.
    ///
    /// Owner records then carry a 4-byte id instead of two strings and a set, so they copy without
    /// reference counting and compare profiles by id. The exclusive profile is id 0 and found without hashing.
    struct ProfileTable: Sendable {
        static let exclusive: Int32 = 0

        private var profiles: ContiguousArray<SharingProfile> = [.exclusive]
        private var users: ContiguousArray<Int> = [0]
        private var ids: [SharingProfile: Int32] = [:]
        private var freeIDs: [Int32] = []

        init() {}

        subscript(id: Int32) -> SharingProfile { profiles[Int(id)] }

        /// The profile's sharing key; "" for the exclusive profile without copying the profile.
        func key(of id: Int32) -> String {
            id == Self.exclusive ? "" : profiles[Int(id)].key
        }

        /// Id of `profile` if some owner uses it.
        func id(of profile: SharingProfile) -> Int32? {
            Self.isExclusive(profile) ? Self.exclusive : ids[profile]
        }

        /// Id of `profile`, interning it, counted as one more user.
        mutating func retain(_ profile: SharingProfile) -> Int32 {
            if Self.isExclusive(profile) { return Self.exclusive }
            if let id = ids[profile] {
                users[Int(id)] += 1
                return id
            }
            let id: Int32
            if let recycled = freeIDs.popLast() {
                id = recycled
                profiles[Int(id)] = profile
                users[Int(id)] = 1
            } else {
                id = Int32(profiles.count)
                profiles.append(profile)
                users.append(1)
            }
            ids[profile] = id
            return id
        }

        /// One user fewer; the profile is forgotten when none is left.
        mutating func release(_ id: Int32) {
            guard id != Self.exclusive else { return }
            users[Int(id)] -= 1
            if users[Int(id)] == 0 {
                ids[profiles[Int(id)]] = nil
                profiles[Int(id)] = .exclusive
                freeIDs.append(id)
            }
        }

        /// Same as `profile == .exclusive`, without hashing.
        private static func isExclusive(_ profile: SharingProfile) -> Bool {
            profile.key.isEmpty && profile.ports.isEmpty && profile.backendKey.isEmpty
        }
    }
}
