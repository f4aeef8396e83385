import Dispatch

/// One benchmarked subsystem; `main.swift` lists them so new sections plug in without touching the others.
protocol BenchmarkSection {
    /// Short name used to select the section on the command line.
    var name: String { get }
    func run() -> [Table]
}

extension BenchmarkSection {
    /// Runs the async measurements of a lab section from the synchronous `run()` and waits for them. An error
    /// becomes a one-row table titled `title`, so a failing section still prints what went wrong and the others run.
    func waitForTables(orErrorTitled title: String, _ measure: @escaping @Sendable () async throws -> [Table]) -> [Table] {
        let result = Box<Result<[Table], Error>>()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do { result.value = .success(try await measure()) } catch { result.value = .failure(error) }
            done.signal()
        }
        done.wait()
        switch result.value {
        case .success(let tables)?:
            return tables
        case .failure(let error)?:
            var table = Table(title: title, columns: ["error"])
            table.add(["\(error)"])
            return [table]
        case nil:
            return []
        }
    }

    func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// A mutable cell to carry a result out of a detached task.
final class Box<T>: @unchecked Sendable {
    var value: T?
}
