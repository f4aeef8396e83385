import CSQLite
import Foundation
import VIPStore

/// One SQLite connection and its prepared statements. Not thread-safe: each owner serializes its use
/// (the store behind a lock, a watch on its own thread). Closed when released.
final class SQLiteConnection {
    let path: String
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        self.path = path
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &opened, flags, nil)
        guard status == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            if let opened { sqlite3_close_v2(opened) }
            throw StoreError.unavailable("\(path): \(message)")
        }
        handle = opened
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs SQL without results (pragmas, schema, BEGIN/COMMIT). `SQLITE_BUSY` comes back as `Busy`.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        if status == SQLITE_OK { return }
        if status == SQLITE_BUSY || status == SQLITE_LOCKED { throw Busy() }
        throw failure(status, message.map { String(cString: $0) })
    }

    /// Runs a cached statement with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [Binding] = [], row: (Row) throws -> Void = { _ in }) throws {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, binding) in bindings.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch binding {
            case .integer(let value): status = sqlite3_bind_int64(statement, index, value)
            case .bytes(let bytes):
                // A zero-length blob bound through a pointer would be stored as NULL, which history reads as a delete.
                if bytes.isEmpty {
                    status = sqlite3_bind_zeroblob(statement, index, 0)
                } else {
                    status = bytes.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), csqlite_transient()) }
                }
            }
            guard status == SQLITE_OK else { throw failure(status, nil) }
        }
        while true {
            let status = sqlite3_step(statement)
            switch status {
            case SQLITE_ROW: try row(Row(statement: statement))
            case SQLITE_DONE: return
            case SQLITE_BUSY, SQLITE_LOCKED: throw Busy()
            default: throw failure(status, nil)
            }
        }
    }

    /// The one integer a statement returns, or nil when it returns no row.
    func integer(_ sql: String, _ bindings: [Binding] = []) throws -> Int64? {
        var result: Int64?
        try query(sql, bindings) { result = $0.integer(0) }
        return result
    }

    /// Rows the last statement changed.
    var changes: Int { Int(sqlite3_changes(handle)) }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw failure(status, nil) }
        statements[sql] = statement
        return statement
    }

    private func failure(_ status: Int32, _ message: String?) -> StoreError {
        let text = message ?? String(cString: sqlite3_errmsg(handle))
        return StoreError.unavailable("\(path): \(text) (SQLite error \(status))")
    }

    /// Another connection holds the write lock (or a reader needs recovery first): try again later.
    struct Busy: Error {}

    enum Binding {
        case integer(Int64)
        case bytes(Data)

        static func key(_ key: String) -> Binding { .bytes(Data(key.utf8)) }
    }

    /// The current row of a stepping statement; valid only inside the `row` callback.
    struct Row {
        let statement: OpaquePointer

        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

        func data(_ column: Int32) -> Data {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return Data() }
            return Data(bytes: bytes, count: count)
        }

        /// A row of `key, value, create_revision, mod_revision`, as listings and history read them.
        func record() -> Record {
            Record(key: string(0), value: data(1), createRevision: integer(2), modRevision: integer(3))
        }

        func string(_ column: Int32) -> String {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
        }
    }
}
