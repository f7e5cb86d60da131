package sqlstore

import (
	"context"
	"fmt"
)

// A migration brings the schema from version-1 to version.
type migration struct {
	version    int
	pg, sqlite string
}

// migrations are the schema's versions, oldest first. Never edit one that
// has shipped: add the next.
var migrations = []migration{{
	version: 1,
	pg: `
CREATE TABLE apiguard_keys (
	key_id      TEXT PRIMARY KEY,
	client_id   TEXT NOT NULL,
	digest      BYTEA NOT NULL UNIQUE,
	secret      TEXT,
	prefix      TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('server', 'publishable')),
	env         TEXT NOT NULL CHECK (env IN ('any', 'sandbox', 'live')),
	role        TEXT NOT NULL,
	scopes      TEXT NOT NULL,
	ips         TEXT NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	created_by  TEXT NOT NULL,
	not_after   TIMESTAMPTZ,
	revoked_at  TIMESTAMPTZ,
	replaced_by TEXT
);
CREATE INDEX apiguard_keys_client ON apiguard_keys (client_id);
CREATE TABLE apiguard_audit (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        TIMESTAMPTZ NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	client_id TEXT NOT NULL,
	key_id    TEXT NOT NULL,
	detail    TEXT NOT NULL
);
CREATE INDEX apiguard_audit_client ON apiguard_audit (client_id, id);
CREATE TABLE apiguard_changes (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        TIMESTAMPTZ NOT NULL,
	key_id    TEXT NOT NULL,
	client_id TEXT NOT NULL
);`,
	sqlite: `
CREATE TABLE apiguard_keys (
	key_id      TEXT PRIMARY KEY,
	client_id   TEXT NOT NULL,
	digest      BLOB NOT NULL UNIQUE,
	secret      TEXT,
	prefix      TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('server', 'publishable')),
	env         TEXT NOT NULL CHECK (env IN ('any', 'sandbox', 'live')),
	role        TEXT NOT NULL,
	scopes      TEXT NOT NULL,
	ips         TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	created_by  TEXT NOT NULL,
	not_after   INTEGER,
	revoked_at  INTEGER,
	replaced_by TEXT
) STRICT;
CREATE INDEX apiguard_keys_client ON apiguard_keys (client_id);
CREATE TABLE apiguard_audit (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	at        INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	client_id TEXT NOT NULL,
	key_id    TEXT NOT NULL,
	detail    TEXT NOT NULL
) STRICT;
CREATE INDEX apiguard_audit_client ON apiguard_audit (client_id, id);
CREATE TABLE apiguard_changes (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	at        INTEGER NOT NULL,
	key_id    TEXT NOT NULL,
	client_id TEXT NOT NULL
) STRICT;`,
}}

// SchemaVersion is the version of the schema this package writes and
// reads; Open and New migrate a database to it.
const SchemaVersion = 1

// migrateLock is the PostgreSQL advisory lock key that serializes
// migrations of one database ("apiguard" in ASCII, folded to 63 bits).
const migrateLock int64 = 0x61706967756172

// migrate brings the schema to SchemaVersion in one transaction. On
// PostgreSQL the transaction first takes an advisory lock, so that stores
// starting at once migrate one after the other and the later ones find
// nothing to do; on SQLite, BEGIN IMMEDIATE does the same. A database whose
// schema is newer than SchemaVersion is refused.
func (s *Store) migrate(ctx context.Context) error {
	err := s.inTx(ctx, func(q querier) error {
		if s.d.pg {
			if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS apiguard_schema_version (
			version    INTEGER PRIMARY KEY,
			applied_at TEXT NOT NULL
		)`); err != nil {
			return err
		}
		var have int
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM apiguard_schema_version`).Scan(&have); err != nil {
			return err
		}
		if have > SchemaVersion {
			return fmt.Errorf("sqlstore: the database's schema is version %d, newer than this build's %d: upgrade apiguard", have, SchemaVersion)
		}
		for _, m := range migrations {
			if m.version <= have {
				continue
			}
			stmt := m.sqlite
			if s.d.pg {
				stmt = m.pg
			}
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlstore: migration %d: %w", m.version, err)
			}
			if _, err := q.ExecContext(ctx, s.d.q(`INSERT INTO apiguard_schema_version (version, applied_at) VALUES ($1, $2)`),
				m.version, s.now().UTC().Format("2006-01-02T15:04:05.000000Z")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s schema: %w", s.d, err)
	}
	return nil
}
