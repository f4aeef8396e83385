/// The tables and every statement the store runs, in one place. Keys are BLOBs, so the primary key orders
/// them bytewise, the order `Listing` promises; the revision index serves watches and compaction.
enum Schema {
    static let create = """
        CREATE TABLE IF NOT EXISTS records (
            key BLOB PRIMARY KEY,
            value BLOB,
            create_revision INTEGER NOT NULL,
            mod_revision INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_by_revision ON records (mod_revision, key);
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
        """

    static let revision = "SELECT value FROM meta WHERE name = 'revision'"
    static let compacted = "SELECT value FROM meta WHERE name = 'compacted'"
    static let setRevision = "UPDATE meta SET value = ?1 WHERE name = 'revision'"
    static let raiseCompacted = "UPDATE meta SET value = max(value, ?1) WHERE name = 'compacted'"

    static let get = "SELECT value, create_revision, mod_revision FROM records WHERE key = ?1 AND value IS NOT NULL"
    /// Column 0 is 1 for a tombstone.
    static let condition = "SELECT value IS NULL, mod_revision FROM records WHERE key = ?1"
    static let listFrom = """
        SELECT key, value, create_revision, mod_revision FROM records
        WHERE key >= ?1 AND value IS NOT NULL ORDER BY key
        """
    static let listBetween = """
        SELECT key, value, create_revision, mod_revision FROM records
        WHERE key >= ?1 AND key < ?2 AND value IS NOT NULL ORDER BY key
        """

    /// A key deleted and written again starts a new life: its create revision is this one.
    static let put = """
        INSERT INTO records (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)
        ON CONFLICT (key) DO UPDATE SET
            value = excluded.value,
            mod_revision = excluded.mod_revision,
            create_revision = CASE WHEN records.value IS NULL THEN excluded.create_revision ELSE records.create_revision END
        """
    /// Deleting an absent key changes nothing, and no watch hears of it.
    static let delete = "UPDATE records SET value = NULL, mod_revision = ?2 WHERE key = ?1 AND value IS NOT NULL"
    static let dropTombstones = "DELETE FROM records WHERE value IS NULL AND mod_revision <= ?1"

    /// What changed under a prefix since a revision, oldest first: walks the revision index, never the prefix.
    static let changesFrom = """
        SELECT key, value, create_revision, mod_revision FROM records INDEXED BY records_by_revision
        WHERE mod_revision > ?1 AND key >= ?2 ORDER BY mod_revision, key
        """
    static let changesBetween = """
        SELECT key, value, create_revision, mod_revision FROM records INDEXED BY records_by_revision
        WHERE mod_revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY mod_revision, key
        """
}
