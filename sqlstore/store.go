package sqlstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apiguard/apiguard"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// DefaultPollInterval is how often a Watcher on SQLite looks for changes,
// unless WithPollInterval says otherwise.
const DefaultPollInterval = 500 * time.Millisecond

// DefaultOverlap is the overlap of a rotation that operators use unless
// they choose another: the old key keeps working for 24 hours, as 88Pay's
// rotation guide asks.
const DefaultOverlap = 24 * time.Hour

// Store is an apiguard.KeyStore kept in a PostgreSQL or SQLite database,
// with the calls that change keys (Issue, Rotate, Revoke, AddIPs, ...).
// Every change is written in one transaction with its audit record and a
// change record that Watch delivers to every replica.
//
// A Store is safe for concurrent use by multiple goroutines. Close it when
// done; it closes the database only if Open opened it.
type Store struct {
	db      *sql.DB
	d       dialect
	ownDB   bool
	now     func() time.Time
	poll    time.Duration
	onError func(error)

	lookupQ, secretsQ string

	mu       sync.Mutex
	watchers map[*Watcher]struct{}
	closed   bool
}

// An Option configures a Store.
type Option func(*Store) error

// WithClock sets the clock the Store checks expiry against and stamps
// changes with. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		if now == nil {
			return errors.New("sqlstore: WithClock needs a clock")
		}
		s.now = now
		return nil
	}
}

// WithPollInterval sets how often a Watcher on SQLite looks for changes.
// It must be positive. The default is DefaultPollInterval (500 ms). On
// PostgreSQL, changes are pushed and the interval is unused.
func WithPollInterval(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("sqlstore: poll interval must be positive, got %v", d)
		}
		s.poll = d
		return nil
	}
}

// WithErrorHandler sets a function told of the errors a Watcher meets
// while it reconnects or polls (a lost connection, a failed query). The
// errors hold no secret. The default discards them.
func WithErrorHandler(f func(error)) Option {
	return func(s *Store) error {
		if f == nil {
			return errors.New("sqlstore: WithErrorHandler needs a function")
		}
		s.onError = f
		return nil
	}
}

// Open opens the database at url, brings its schema up to date, and
// returns a Store that closes the database when closed. The url is
// "postgres://user:password@host:port/db?sslmode=..." (or postgresql://)
// for PostgreSQL, or "sqlite:PATH", "file:PATH" or a plain path for an
// SQLite file, which is created if missing. SQLite is opened in WAL mode
// with a busy timeout of 10 s unless the URL's parameters say otherwise.
//
// Open fails if the database cannot be reached within ctx, or if its schema
// is newer than this package knows. Its errors never hold the password.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	pg, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	driverName := "sqlite"
	if pg {
		driverName = "pgx"
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", driverName, scrub(err, url))
	}
	s, err := newStore(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, scrub(err, url)
	}
	s.ownDB = true
	return s, nil
}

// New returns a Store on db, whose driver must be pgx's
// (github.com/jackc/pgx/v5/stdlib) or modernc.org/sqlite, after bringing
// the schema up to date. Closing the Store leaves db open. With SQLite, set
// a busy timeout and WAL mode in the data source name, as Open does
// ("?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)").
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New needs a database")
	}
	return newStore(ctx, db, opts)
}

func newStore(ctx context.Context, db *sql.DB, opts []Option) (*Store, error) {
	d, err := dialectOf(db.Driver())
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, now: time.Now, poll: DefaultPollInterval, onError: func(error) {}}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.lookupQ = d.q(`SELECT ` + keyColumns + ` FROM apiguard_keys WHERE digest = $1`)
	s.secretsQ = d.q(`SELECT ` + keyColumns + `, secret FROM apiguard_keys
		WHERE client_id = $1 AND secret IS NOT NULL AND revoked_at IS NULL ORDER BY key_id`)
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the Store's watchers and, if Open opened the database, closes
// it. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ws := make([]*Watcher, 0, len(s.watchers))
	for w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
	if s.ownDB {
		return s.db.Close()
	}
	return nil
}

// DB returns the database the Store uses.
func (s *Store) DB() *sql.DB { return s.db }

// keyColumns are the columns keyRow scans, in order.
const keyColumns = `key_id, client_id, digest, prefix, kind, env, role, scopes, ips,
	created_at, created_by, not_after, revoked_at, replaced_by, secret IS NOT NULL`

// keyRow is a row of apiguard_keys, without the secret.
type keyRow struct {
	keyID, clientID     string
	digest              []byte
	prefix, kind, env   string
	role, scopes, ips   string
	created             nullTime
	createdBy           string
	notAfter, revokedAt nullTime
	replacedBy          sql.NullString
	keepSecret          bool
}

func (r *keyRow) dest() []any {
	return []any{&r.keyID, &r.clientID, &r.digest, &r.prefix, &r.kind, &r.env, &r.role, &r.scopes, &r.ips,
		&r.created, &r.createdBy, &r.notAfter, &r.revokedAt, &r.replacedBy, &r.keepSecret}
}

// live reports whether the key works at t.
func (r *keyRow) live(t time.Time) bool {
	return r.revokedAt.t.IsZero() && (r.notAfter.t.IsZero() || t.Before(r.notAfter.t))
}

// client returns the identity the row stands for.
func (r *keyRow) client() *apiguard.Client {
	c := &apiguard.Client{ID: r.clientID, KeyID: r.keyID, Role: r.role, Env: envOf(r.env), Publishable: r.kind == kindPublishable}
	if r.scopes != "" {
		c.Scopes = strings.Fields(r.scopes)
	}
	if r.ips != "" {
		for f := range strings.FieldsSeq(r.ips) {
			if p, err := netip.ParsePrefix(f); err == nil {
				c.IPs = append(c.IPs, p)
			}
		}
	}
	return c
}

func (r *keyRow) info() KeyInfo {
	return KeyInfo{
		Client: *r.client(), Prefix: r.prefix, KeepSecret: r.keepSecret,
		CreatedAt: r.created.t, CreatedBy: r.createdBy, NotAfter: r.notAfter.t,
		RevokedAt: r.revokedAt.t, ReplacedBy: r.replacedBy.String,
	}
}

// missDigest stands in for the digest of an unknown key, so that an unknown
// key is compared as a wrong one is.
var missDigest = sha256.Sum256([]byte("sqlstore: no such key"))

// Lookup implements apiguard.KeyStore. It finds the key by its SHA-256
// digest and compares digests in constant time. An unknown, revoked or
// expired key is apiguard.ErrInvalidKey; a database failure is any other
// error, which the guard answers with 503.
func (s *Store) Lookup(ctx context.Context, key string) (*apiguard.Client, error) {
	d := sha256.Sum256([]byte(key))
	var r keyRow
	err := s.db.QueryRowContext(ctx, s.lookupQ, d[:]).Scan(r.dest()...)
	found := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		r.digest = missDigest[:]
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: lookup: %w", err)
	}
	match := subtle.ConstantTimeCompare(r.digest, d[:]) == 1
	if !found || !match || !r.live(s.now()) {
		return nil, apiguard.ErrInvalidKey
	}
	return r.client(), nil
}

// Secrets implements apiguard.KeyStore: the live keys of the client that
// were stored with KeepSecret, in plaintext, ordered by key id. An unknown
// client has none.
func (s *Store) Secrets(ctx context.Context, clientID string) ([]apiguard.Secret, error) {
	rows, err := s.db.QueryContext(ctx, s.secretsQ, clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: secrets: %w", err)
	}
	defer rows.Close()
	now := s.now()
	out := []apiguard.Secret{}
	for rows.Next() {
		var r keyRow
		var secret string
		if err := rows.Scan(append(r.dest(), &secret)...); err != nil {
			return nil, fmt.Errorf("sqlstore: secrets: %w", err)
		}
		if r.live(now) {
			out = append(out, apiguard.Secret{Key: secret, Client: r.client()})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: secrets: %w", err)
	}
	return out, nil
}

// querier is what a transaction offers: *sql.Tx, or an *sql.Conn inside
// BEGIN IMMEDIATE on SQLite.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction that holds the write lock from its start:
// a plain transaction on PostgreSQL (rows are locked with FOR UPDATE), and
// BEGIN IMMEDIATE on SQLite, so that two writers never deadlock on the
// upgrade from reader to writer.
func (s *Store) inTx(ctx context.Context, fn func(q querier) error) error {
	if s.d.pg {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		// The context may be done; roll back regardless.
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

// scrub replaces the password of url, should it appear in err, so that no
// error of the package shows it.
func scrub(err error, url string) error {
	if err == nil {
		return nil
	}
	pw := passwordOf(url)
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

// scrubbedError is an error whose text has had a password removed; it
// still matches its cause with errors.Is.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func envOf(s string) apiguard.Environment {
	switch s {
	case "sandbox":
		return apiguard.Sandbox
	case "live":
		return apiguard.Live
	}
	return apiguard.AnyEnvironment
}

// The values of the kind column: a secret server key, or a publishable
// client key (apiguard.Client.Publishable).
const (
	kindServer      = "server"
	kindPublishable = "publishable"
)

// kindName returns the kind column's value for a client.
func kindName(publishable bool) string {
	if publishable {
		return kindPublishable
	}
	return kindServer
}

var _ apiguard.KeyStore = (*Store)(nil)

// sortedPrefixes returns ps without duplicates, in a stable order.
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}
