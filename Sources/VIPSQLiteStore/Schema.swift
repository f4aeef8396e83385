/// The tables and every statement the store runs, in one place. Keys are BLOBs, so the primary keys order
/// them bytewise, the order `Listing` promises.
///
/// `records` holds the live records. `changes` is the history watches read: one row per key a transaction
/// wrote (value NULL for a delete), kept until compaction, so a watch sees every revision, as on etcd.
enum Schema {
    static let create = """
        CREATE TABLE IF NOT EXISTS records (
            key BLOB PRIMARY KEY,
            value BLOB NOT NULL,
            create_revision INTEGER NOT NULL,
            mod_revision INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS changes (
            revision INTEGER NOT NULL,
            key BLOB NOT NULL,
            value BLOB,
            create_revision INTEGER NOT NULL,
            PRIMARY KEY (revision, key)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
        """

    static let revision = "SELECT value FROM meta WHERE name = 'revision'"
    static let compacted = "SELECT value FROM meta WHERE name = 'compacted'"
    static let setRevision = "UPDATE meta SET value = ?1 WHERE name = 'revision'"
    static let raiseCompacted = "UPDATE meta SET value = max(value, ?1) WHERE name = 'compacted'"

    static let get = "SELECT value, create_revision, mod_revision FROM records WHERE key = ?1"
    static let modRevision = "SELECT mod_revision FROM records WHERE key = ?1"
    static let listFrom = """
        SELECT key, value, create_revision, mod_revision FROM records WHERE key >= ?1 ORDER BY key
        """
    static let listBetween = """
        SELECT key, value, create_revision, mod_revision FROM records WHERE key >= ?1 AND key < ?2 ORDER BY key
        """

    /// A new key (or one deleted before) starts its life at this revision; an existing one keeps its start.
    static let put = """
        INSERT INTO records (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision
        """
    /// The history row of a put, copied from the record just written (a later operation on the same key in
    /// the same transaction replaces it: the transaction's last word is what the revision holds).
    static let recordPut = """
        INSERT OR REPLACE INTO changes (revision, key, value, create_revision)
        SELECT mod_revision, key, value, create_revision FROM records WHERE key = ?1
        """
    static let delete = "DELETE FROM records WHERE key = ?1"
    static let recordDelete = "INSERT OR REPLACE INTO changes (revision, key, value, create_revision) VALUES (?2, ?1, NULL, 0)"
    static let dropHistory = "DELETE FROM changes WHERE revision <= ?1"

    /// What changed under a prefix since a revision, oldest first: a range of the history's primary key.
    static let changesFrom = """
        SELECT key, value, create_revision, revision FROM changes
        WHERE revision > ?1 AND key >= ?2 ORDER BY revision, key
        """
    static let changesBetween = """
        SELECT key, value, create_revision, revision FROM changes
        WHERE revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY revision, key
        """
}
