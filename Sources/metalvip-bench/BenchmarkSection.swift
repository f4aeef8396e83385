import Dispatch

/// One benchmarked subsystem; `main.swift` lists them so new sections plug in without touching the others.
protocol BenchmarkSection {
    /// Short name used to select the section on the command line.
    var name: String { get }
    func run() -> [Table]
}

/// Runs an async measurement to completion from a section's synchronous `run()`; an error becomes a
/// one-row table under `title`, so one failed section never hides the others' figures.
func measureAsync(title: String, _ body: @escaping @Sendable () async throws -> [Table]) -> [Table] {
    let result = Box<Result<[Table], Error>>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { result.value = .success(try await body()) } catch { result.value = .failure(error) }
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
