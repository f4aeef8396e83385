import Foundation
import VIPSQLiteStore

/// Which embedded backend a `--store` directory means. `file:DIR` and `sqlite:DIR` say it outright; a plain
/// directory keeps the kind it already holds, and a new one gets the database.
enum EmbeddedStore: Equatable {
    /// One file per record (VIPFileStore).
    case files(String)
    /// One SQLite database (VIPSQLiteStore).
    case database(String)

    static let filesScheme = "file:"
    static let databaseScheme = "sqlite:"

    init(_ location: String) throws {
        let explicit: EmbeddedStore?
        if location.hasPrefix(Self.filesScheme) {
            explicit = .files(String(location.dropFirst(Self.filesScheme.count)))
        } else if location.hasPrefix(Self.databaseScheme) {
            explicit = .database(String(location.dropFirst(Self.databaseScheme.count)))
        } else {
            explicit = nil
        }
        let directory = explicit?.directory ?? location
        let holdsFiles = Self.isDirectory(directory + "/.meta")
        let holdsDatabase = FileManager.default.fileExists(atPath: directory + "/" + SQLiteStore.fileName)
        switch (explicit, holdsFiles, holdsDatabase) {
        case (_, true, true):
            throw CLIError("\(directory) holds both a file store (.meta) and a database (\(SQLiteStore.fileName)); "
                           + "move one of them away")
        // An explicit kind never opens a second, empty store beside the other kind's records.
        case (.database?, true, false):
            throw CLIError("\(directory) holds a file store (.meta), not a database: use --store file:\(directory)")
        case (.files?, false, true):
            throw CLIError("\(directory) holds a database (\(SQLiteStore.fileName)), not a file store: use --store sqlite:\(directory)")
        case (let explicit?, _, _): self = explicit
        case (nil, true, false): self = .files(directory)
        // A new directory gets the database: one transaction per write, where files cost a write and a flush per record.
        case (nil, false, _): self = .database(directory)
        }
    }

    var directory: String {
        switch self {
        case .files(let directory), .database(let directory): directory
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
