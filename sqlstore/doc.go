// Package sqlstore keeps apiguard's API keys in a SQL database, PostgreSQL
// or SQLite, with their lifecycle: issue, rotate with an overlap, revoke,
// register IP addresses, and an audit trail of every change.
//
// A Store is an apiguard.KeyStore. It keeps the SHA-256 digest of each key,
// never the key, except for keys issued with KeepSecret for the hash
// schemes that need the secret itself (apiguard.KeyStore.Secrets). Lookups
// find a key by its digest and compare digests in constant time.
//
// Open connects to "postgres://..." (through pgx's database/sql driver) or
// to an SQLite file ("sqlite:path", or a plain path; pure Go, no cgo) and
// brings the schema up to date; New does the same on a *sql.DB of the
// caller's. The schema is versioned in the apiguard_schema_version table
// and migrated by the store itself, under an advisory lock on PostgreSQL,
// so that replicas may start at once.
//
// Put an apiguard.CachedKeyStore in front of a Store, and tell the cache of
// changes with Watch: on PostgreSQL a change is pushed to every replica by
// LISTEN/NOTIFY; on SQLite a watcher polls a change table (every 500 ms by
// default). Either way a revoked key stops working everywhere within a
// second.
//
// When the database fails, Lookup returns an error that does not match
// apiguard.ErrInvalidKey: the guard answers 503 and fails closed.
package sqlstore
