import Foundation
import VIPAllocation
import VIPModel
import VIPStore

/// One compare-and-swap write the controller wants: applied only if the record is still as it was read.
public struct PlannedWrite: Sendable, Hashable {
    public var condition: Condition
    public var operation: StoreOperation
}

/// One decision about one service, as the log reports it.
public struct Decision: Sendable, CustomStringConvertible {
    public var service: ObjectKey
    public var message: String
    public var addresses: [IPAddress]

    public var description: String { "\(service.namespacedName): \(message)" }
}

/// What one reconcile pass decided, ready to commit.
public struct ReconcilePlan: Sendable {
    public var writes: [PlannedWrite] = []
    /// One entry per decision, for the log.
    public var log: [Decision] = []
    /// The assignments after the plan, by service: what `get services` will show.
    public var assignments: [ObjectKey: [IPAddress]] = [:]
    /// Each pool's size and use after the plan, for the allocator metrics.
    public var poolUsage: [String: PoolUsage] = [:]

    public var isEmpty: Bool { writes.isEmpty }
}

/// Decides every service's addresses from a snapshot. Pure: the same snapshot gives the same plan, so it is
/// tested without a store, and a controller that crashed mid-commit simply plans the rest next time.
public struct Reconciler: Sendable {
    /// The `loadBalancerClass` this controller serves; nil serves services without a class.
    public var loadBalancerClass: String?

    public init(loadBalancerClass: String? = nil) {
        self.loadBalancerClass = loadBalancerClass
    }

    public func handles(_ service: Service) -> Bool {
        service.type == .loadBalancer && service.loadBalancerClass == loadBalancerClass
    }

    public func plan(_ snapshot: ClusterSnapshot, time: String) -> ReconcilePlan {
        var plan = ReconcilePlan()
        var allocator = Allocator(pools: snapshot.pools.map(\.resource))
        var events: [ObjectKey: ServiceEvents] = snapshot.events.mapValues(\.value)
        var touchedEvents: Set<ObjectKey> = []
        var requests: [ObjectKey: AllocationRequest] = [:]
        var pending: [StoredObject<Service>] = []
        var cleared: [ObjectKey: AllocationFailure] = [:]

        func note(_ key: ObjectKey, _ reason: EventReason, _ message: String) {
            if events[key, default: ServiceEvents()].record(reason, message, at: time) { touchedEvents.insert(key) }
        }

        // Pass 1: every service that already has addresses keeps them if they still fit. Done for all
        // before any new allocation, so a newcomer can never take an address from an existing holder.
        for stored in snapshot.services {
            let service = stored.resource
            let key = service.key
            let current = snapshot.assignments[key]?.value.addresses ?? []
            guard handles(service) else {
                if service.type == .loadBalancer {
                    // Another class's controller answers for it, from the same pools: its addresses stay
                    // taken here, and its records are not this controller's to change.
                    if !current.isEmpty, let request = try? AllocationRequest(
                        service: service, namespaceLabels: snapshot.namespaceLabels(service.meta.namespace)) {
                        _ = allocator.keep(current, for: request)
                    }
                    if let stored = snapshot.assignments[key] { plan.assignments[key] = stored.value.addresses.sorted() }
                } else if !current.isEmpty {
                    let why = "service type is \(service.type.rawValue), not LoadBalancer"
                    note(key, .clearAssignment, "released \(list(current)): \(why)")
                    plan.log.append(Decision(service: key, message: "released \(list(current)) (\(why))", addresses: current))
                }
                continue
            }
            let request: AllocationRequest
            do {
                request = try AllocationRequest(service: service, namespaceLabels: snapshot.namespaceLabels(service.meta.namespace))
            } catch {
                note(key, .allocationFailed, "invalid service: \(error)")
                continue
            }
            requests[key] = request
            if current.isEmpty {
                pending.append(stored)
            } else if let problem = allocator.keep(current, for: request) {
                cleared[key] = problem
                pending.append(stored)
            } else {
                plan.assignments[key] = current.sorted()
            }
        }

        // Pass 2: allocate, in the order services were created.
        for stored in pending {
            let key = stored.resource.key
            guard let request = requests[key] else { continue }
            let current = snapshot.assignments[key]?.value.addresses ?? []
            if let problem = cleared[key] {
                note(key, .clearAssignment, "released \(list(current)): \(problem)")
                plan.log.append(Decision(service: key, message: "released \(list(current)) (\(problem))", addresses: current))
            }
            switch allocator.allocate(request) {
            case .success(let addresses):
                plan.assignments[key] = addresses
                note(key, .ipAllocated, "Assigned IP \(list(addresses))")
                plan.log.append(Decision(service: key, message: "assigned \(list(addresses))", addresses: addresses))
            case .failure(let failure):
                note(key, .allocationFailed, "Failed to allocate IP for \"\(key.namespacedName)\": \(failure)")
                if touchedEvents.contains(key) { plan.log.append(Decision(service: key, message: "pending (\(failure))", addresses: [])) }
            }
        }

        for name in allocator.space.poolNames {
            plan.poolUsage[name] = allocator.space.usage(ofPool: name)
        }

        // Writes: assignments that changed, records of services that are gone, and new events.
        let liveServices = Set(snapshot.services.map(\.resource.key))
        for (key, stored) in snapshot.assignments where plan.assignments[key] == nil {
            plan.writes.append(PlannedWrite(condition: Condition(stored.record.key, .modRevision(stored.record.modRevision)),
                                            operation: .delete(key: stored.record.key)))
            if !liveServices.contains(key) {
                plan.log.append(Decision(service: key, message: "deleted, released \(list(stored.value.addresses))",
                                         addresses: stored.value.addresses))
            }
        }
        // Only the changed ones are put in order: sorting all 10k on every pass was 7% of a pass.
        let changed = plan.assignments.filter { key, addresses in
            snapshot.assignments[key].map { $0.value.addresses.sorted() != addresses } ?? true
        }
        for (key, addresses) in changed.sorted(by: { $0.key < $1.key }) {
            let existing = snapshot.assignments[key]
            guard let data = try? RecordCoding.encode(ServiceAssignment(addresses: addresses)) else { continue }
            let storeKey = Keyspace.assignment(of: key)
            plan.writes.append(PlannedWrite(
                condition: Condition(storeKey, existing.map { .modRevision($0.record.modRevision) } ?? .absent),
                operation: .put(key: storeKey, value: data)))
        }
        for (key, stored) in snapshot.events where !liveServices.contains(key) {
            plan.writes.append(PlannedWrite(condition: Condition(stored.record.key, .modRevision(stored.record.modRevision)),
                                            operation: .delete(key: stored.record.key)))
        }
        for key in touchedEvents.sorted() {
            guard let data = try? RecordCoding.encode(events[key]) else { continue }
            let storeKey = Keyspace.events(of: key)
            plan.writes.append(PlannedWrite(
                condition: Condition(storeKey, snapshot.events[key].map { .modRevision($0.record.modRevision) } ?? .absent),
                operation: .put(key: storeKey, value: data)))
        }
        return plan
    }

    /// `["192.0.2.10"]`, as MetalLB's events print addresses.
    private func list(_ addresses: [IPAddress]) -> String {
        "[" + addresses.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }
}
