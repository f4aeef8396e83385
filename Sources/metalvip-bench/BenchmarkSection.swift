/// One benchmarked subsystem; `main.swift` lists them so new sections plug in without touching the others.
protocol BenchmarkSection {
    /// Short name used to select the section on the command line.
    var name: String { get }
    func run() -> [Table]
}
