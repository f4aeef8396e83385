import VIPModel

/// Everything about a service that decides its address, derived from the Service and its namespace.
public struct AllocationRequest: Sendable, Hashable {
    /// `namespace/name`.
    public var owner: String
    public var namespace: String
    public var namespaceLabels: [String: String]
    public var serviceLabels: [String: String]
    public var families: FamilyRequirement
    /// From `loadBalancerIPs` or `loadBalancerIP`; at most one per family.
    public var requested: [IPAddress]
    /// From the `address-pool` annotation.
    public var pool: String?
    public var sharing: SharingProfile

    public init(owner: String, namespace: String = defaultNamespace, namespaceLabels: [String: String] = [:],
                serviceLabels: [String: String] = [:], families: FamilyRequirement = FamilyRequirement(families: [.ipv4], requireAll: true),
                requested: [IPAddress] = [], pool: String? = nil, sharing: SharingProfile = .exclusive) {
        self.owner = owner
        self.namespace = namespace
        self.namespaceLabels = namespaceLabels
        self.serviceLabels = serviceLabels
        self.families = families
        self.requested = requested
        self.pool = pool
        self.sharing = sharing
    }

    public init(service: Service, namespaceLabels: [String: String]) throws(FieldError) {
        let backend = service.externalTrafficPolicy == .local
            ? "local:" + service.selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            : ""
        self.init(owner: service.key.namespacedName, namespace: service.meta.namespace, namespaceLabels: namespaceLabels,
                  serviceLabels: service.meta.labels, families: service.familyRequirement,
                  requested: try service.requestedAddresses(), pool: service.addressPool.flatMap { $0.isEmpty ? nil : $0 },
                  sharing: SharingProfile(key: service.sharingKey,
                                          ports: Set(service.ports.map { ServicePortKey(port: $0.port, protocol: $0.protocol.rawValue) }),
                                          backendKey: backend))
    }
}

/// Why a service gets no address (or loses the one it had), worded for `describe`.
public enum AllocationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownPool(String)
    case refused(AssignmentError)
    case notInPool(IPAddress, pool: String, actual: String)
    case wrongFamily(IPAddress, allowed: [IPFamily])
    case missingFamily(IPFamily, policy: String)
    case requestedInDifferentPools([IPAddress], [String])
    /// Pinned or autoAssign rules exclude the address's pool for this service.
    case notEligible(IPAddress, pool: String)
    case requestChanged(held: [IPAddress], requested: [IPAddress])
    case noEligiblePool
    case noAddress([PoolShortage])

    public var description: String {
        switch self {
        case .unknownPool(let name):
            "unknown pool \"\(name)\""
        case .refused(let error):
            error.description
        case .notInPool(let address, let pool, let actual):
            "\(address) is in pool \"\(actual)\", not in the requested pool \"\(pool)\""
        case .wrongFamily(let address, let allowed):
            "\(address) is \(address.family.rawValue) but the service's ipFamilies allow only \(allowed.map(\.rawValue).joined(separator: " and "))"
        case .missingFamily(let family, let policy):
            "\(policy) needs an \(family.rawValue) address but none is requested"
        case .requestedInDifferentPools(let addresses, let pools):
            "requested addresses \(addresses.map(\.description).joined(separator: " and ")) are in different pools (\(pools.joined(separator: ", ")))"
        case .notEligible(let address, let pool):
            "\(address) is in pool \"\(pool)\", which does not serve this service (autoAssign is off or its serviceAllocation does not match)"
        case .requestChanged(let held, let requested):
            "the service now requests \(requested.map(\.description).joined(separator: ",")) instead of \(held.map(\.description).joined(separator: ","))"
        case .noEligiblePool:
            "no pool serves this service: no pool has autoAssign with a matching (or no) serviceAllocation"
        case .noAddress(let shortages):
            "no available address: " + shortages.map(\.description).joined(separator: "; ")
        }
    }
}

/// Why one pool could not serve a request.
public struct PoolShortage: Sendable, Hashable, CustomStringConvertible {
    public var pool: String
    public var family: IPFamily
    /// false: the pool has no addresses of that family at all.
    public var hasFamily: Bool

    public init(pool: String, family: IPFamily, hasFamily: Bool) {
        self.pool = pool
        self.family = family
        self.hasFamily = hasFamily
    }

    public var description: String {
        hasFamily ? "pool \"\(pool)\" has no free \(family.rawValue) address"
                  : "pool \"\(pool)\" has no \(family.rawValue) addresses"
    }
}

/// MetalLB's allocation policy over the `AddressSpace` engine: which pools a service may use, in which
/// order, which families, and whether an address it already has still fits.
public struct Allocator: Sendable {
    public private(set) var space: AddressSpace
    public let pools: [String: IPAddressPool]

    public init(pools: [IPAddressPool]) {
        self.pools = Dictionary(pools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        space = AddressSpace(pools: pools.map {
            PoolDefinition(name: $0.name, ranges: $0.ranges, avoidBuggyIPs: $0.avoidBuggyIPs)
        })
    }

    /// Pools tried for automatic allocation, best first: the named pool; otherwise pinned pools that match,
    /// by priority then name, then unpinned autoAssign pools by name.
    public func candidatePools(for request: AllocationRequest) throws(AllocationFailure) -> [String] {
        if let name = request.pool {
            guard pools[name] != nil else { throw .unknownPool(name) }
            return [name]
        }
        let eligible = pools.values.filter { isAutoEligible($0, for: request) }
        return eligible.sorted {
            ($0.serviceAllocation == nil ? 1 : 0, $0.serviceAllocation?.rank ?? 0, $0.name)
                < ($1.serviceAllocation == nil ? 1 : 0, $1.serviceAllocation?.rank ?? 0, $1.name)
        }.map(\.name)
    }

    func isAutoEligible(_ pool: IPAddressPool, for request: AllocationRequest) -> Bool {
        guard pool.autoAssign else { return false }
        guard let allocation = pool.serviceAllocation else { return true }
        return allocation.matches(namespace: request.namespace, namespaceLabels: request.namespaceLabels,
                                  serviceLabels: request.serviceLabels)
    }

    /// Why the service may not hold `addresses` now (nil when it may): the rules it would be allocated by.
    public func misfit(_ addresses: [IPAddress], for request: AllocationRequest) -> AllocationFailure? {
        if let problem = familyProblem(addresses, request.families) { return problem }
        if !request.requested.isEmpty {
            guard Set(addresses) == Set(request.requested) else {
                return .requestChanged(held: addresses, requested: request.requested)
            }
        }
        for address in addresses {
            if let error = space.checkAssign(address, to: request.owner, profile: request.sharing) { return .refused(error) }
            guard let pool = space.pool(containing: address) else { return .refused(.outsidePools(address)) }
            if let named = request.pool {
                if named != pool { return pools[named] == nil ? .unknownPool(named) : .notInPool(address, pool: named, actual: pool) }
            } else if request.requested.isEmpty, let definition = pools[pool], !isAutoEligible(definition, for: request) {
                return .notEligible(address, pool: pool)
            }
        }
        return nil
    }

    /// Keeps an assignment the service already had, if it still fits; otherwise says why not.
    public mutating func keep(_ addresses: [IPAddress], for request: AllocationRequest) -> AllocationFailure? {
        if let problem = misfit(addresses, for: request) { return problem }
        for address in addresses {
            do { try space.assign(address, to: request.owner, profile: request.sharing) } catch { return .refused(error) }
        }
        return nil
    }

    /// Gives the service its addresses: the requested ones, or the lowest available in the best pool.
    public mutating func allocate(_ request: AllocationRequest) -> Result<[IPAddress], AllocationFailure> {
        release(request.owner)
        let chosen: [IPAddress]
        do {
            chosen = request.requested.isEmpty ? try automatic(request) : try requested(request)
        } catch {
            return .failure(error)
        }
        for address in chosen {
            do {
                try space.assign(address, to: request.owner, profile: request.sharing)
            } catch {
                release(request.owner)
                return .failure(.refused(error))
            }
        }
        return .success(chosen.sorted())
    }

    public mutating func release(_ owner: String) {
        space.release(owner: owner)
    }

    private func requested(_ request: AllocationRequest) throws(AllocationFailure) -> [IPAddress] {
        if let problem = familyProblem(request.requested, request.families) { throw problem }
        var poolNames: [String] = []
        for address in request.requested {
            if let error = space.checkAssign(address, to: request.owner, profile: request.sharing) { throw .refused(error) }
            guard let pool = space.pool(containing: address) else { throw .refused(.outsidePools(address)) }
            if let named = request.pool, named != pool {
                throw pools[named] == nil ? .unknownPool(named) : .notInPool(address, pool: named, actual: pool)
            }
            poolNames.append(pool)
        }
        if Set(poolNames).count > 1 { throw .requestedInDifferentPools(request.requested, poolNames) }
        return request.requested
    }

    private func automatic(_ request: AllocationRequest) throws(AllocationFailure) -> [IPAddress] {
        let candidates = try candidatePools(for: request)
        if candidates.isEmpty { throw .noEligiblePool }
        var shortages: [PoolShortage] = []
        // Every family from one pool: what RequireDualStack needs and PreferDualStack wants.
        for pool in candidates {
            var found: [IPAddress] = []
            for family in request.families.families {
                if let address = space.lowestAvailable(inPool: pool, family: family, for: request.sharing) {
                    found.append(address)
                } else {
                    shortages.append(PoolShortage(pool: pool, family: family, hasFamily: space.families(ofPool: pool).contains(family)))
                    break
                }
            }
            if found.count == request.families.families.count { return found }
        }
        // PreferDualStack settles for one family, in the service's preference order.
        if !request.families.requireAll {
            for family in request.families.families {
                for pool in candidates {
                    if let address = space.lowestAvailable(inPool: pool, family: family, for: request.sharing) { return [address] }
                }
            }
        }
        throw .noAddress(shortages)
    }

    private func familyProblem(_ addresses: [IPAddress], _ requirement: FamilyRequirement) -> AllocationFailure? {
        for address in addresses where !requirement.families.contains(address.family) {
            return .wrongFamily(address, allowed: requirement.families)
        }
        if requirement.requireAll {
            for family in requirement.families where !addresses.contains(where: { $0.family == family }) {
                return .missingFamily(family, policy: requirement.isDualStack ? "RequireDualStack" : "the service's IP family")
            }
        }
        return addresses.isEmpty ? .missingFamily(requirement.families[0], policy: "the service") : nil
    }
}
