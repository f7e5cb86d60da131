package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore/internal/parse"
	"github.com/jackc/pgx/v5/pgconn"
)

// KeyInfo describes a stored key: everything but its secret and digest.
type KeyInfo struct {
	// Client is the identity the key stands for: client id, key id, scopes,
	// role, environment, registered address ranges and whether it is publishable.
	Client apiguard.Client
	// Prefix is the start of the key, such as "sk_test_", that the key was
	// generated with; empty for keys added whole by Add.
	Prefix string
	// KeepSecret reports whether the plaintext is kept for hash schemes.
	KeepSecret bool
	// CreatedAt and CreatedBy say when and by whom the key was stored.
	CreatedAt time.Time
	CreatedBy string
	// NotAfter, when set, is when the key stops working.
	NotAfter time.Time
	// RevokedAt, when set, is when the key was revoked.
	RevokedAt time.Time
	// ReplacedBy is the key id of the key that a rotation replaced this
	// one with, or "".
	ReplacedBy string
}

// Status returns the key's state at t: "revoked", "expired", "rotated"
// (replaced, and working until NotAfter) or "active".
func (k KeyInfo) Status(t time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.NotAfter.IsZero() && !t.Before(k.NotAfter):
		return "expired"
	case k.ReplacedBy != "":
		return "rotated"
	}
	return "active"
}

// NewKey describes a key for Issue to generate.
type NewKey struct {
	// Prefix begins the key, such as "sk_test_" or "live_": letters,
	// digits, '_' and '-', at most 32 of them. The key's environment is
	// taken from it (apiguard.EnvironmentOf) unless Client.Env is set.
	Prefix string
	// Client is the identity the key stands for. Client.ID is required. An
	// empty Client.KeyID gets a random one. Client.Env, when set, must not
	// contradict the prefix: a sandbox key never has a live prefix. Ids,
	// the role and scopes are 1 to 128 printable ASCII characters without
	// spaces; a key holds at most 64 scopes and 256 address ranges, each
	// passing CheckPrefix.
	Client apiguard.Client
	// NotAfter, when set, is when the key stops working.
	NotAfter time.Time
	// KeepSecret keeps the key in plaintext, for hash schemes that need it
	// (apiguard.KeyStore.Secrets).
	KeepSecret bool
}

// AuditEntry is one change recorded in the audit table.
type AuditEntry struct {
	At       time.Time // when, by the Store's clock
	Actor    string    // who made the change, as the caller named them
	Action   string    // "issue", "add", "rotate", "revoke", "ip-add" or "ip-remove"
	ClientID string
	KeyID    string
	Detail   string // what changed, in words; never a secret
}

// Issue generates a key with the prefix nk.Prefix (apiguard.GenerateKey),
// stores it for nk.Client, and returns the key, which is shown this once
// and never again, with its description. actor names who asked for it in
// the audit table.
func (s *Store) Issue(ctx context.Context, actor string, nk NewKey) (string, KeyInfo, error) {
	if len(nk.Prefix) > 32 {
		return "", KeyInfo{}, fmt.Errorf("%w: key prefix longer than 32 characters", ErrInvalid)
	}
	key, err := apiguard.GenerateKey(nk.Prefix)
	if err != nil {
		return "", KeyInfo{}, fmt.Errorf("%w: key prefix %q: letters, digits, '_' and '-' only", ErrInvalid, parse.Clip(nk.Prefix))
	}
	info, err := s.add(ctx, actor, "issue", apiguard.KeySpec{Key: key, Client: nk.Client, NotAfter: nk.NotAfter, KeepSecret: nk.KeepSecret}, nk.Prefix)
	if err != nil {
		return "", KeyInfo{}, err
	}
	return key, info, nil
}

// Add stores a key made elsewhere (one handed out before the database, or
// by another system), as apiguard.MemoryKeyStore.Add does: only its digest
// is kept unless spec.KeepSecret is set. It fails with ErrExists if the key
// or its key id is stored already.
func (s *Store) Add(ctx context.Context, actor string, spec apiguard.KeySpec) (KeyInfo, error) {
	if spec.Key == "" {
		return KeyInfo{}, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	return s.add(ctx, actor, "add", spec, "")
}

func (s *Store) add(ctx context.Context, actor, action string, spec apiguard.KeySpec, prefix string) (KeyInfo, error) {
	c := spec.Client
	if err := checkActor(actor); err != nil {
		return KeyInfo{}, err
	}
	if c.KeyID == "" {
		c.KeyID = newKeyID()
	}
	if err := checkClient(&c); err != nil {
		return KeyInfo{}, err
	}
	keyEnv := apiguard.EnvironmentOf(spec.Key)
	switch {
	case c.Env == apiguard.AnyEnvironment:
		c.Env = keyEnv
	case keyEnv != apiguard.AnyEnvironment && keyEnv != c.Env:
		return KeyInfo{}, fmt.Errorf("%w: a %s key cannot have a %s prefix", ErrInvalid, c.Env, keyEnv)
	}
	now := s.now()
	var info KeyInfo
	err := s.inTx(ctx, func(q querier) error {
		d := sha256.Sum256([]byte(spec.Key))
		var n int
		if err := q.QueryRowContext(ctx, s.d.q(`SELECT COUNT(*) FROM apiguard_keys WHERE key_id = $1 OR digest = $2`),
			c.KeyID, d[:]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: key id %q or its secret is stored already", ErrExists, c.KeyID)
		}
		var secret any
		if spec.KeepSecret {
			secret = spec.Key
		}
		if _, err := q.ExecContext(ctx, s.d.q(`INSERT INTO apiguard_keys
			(key_id, client_id, digest, secret, prefix, kind, env, role, scopes, ips, created_at, created_by, not_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`),
			c.KeyID, c.ID, d[:], secret, prefix, kindName(c.Publishable), envName(c.Env), c.Role,
			strings.Join(c.Scopes, " "), formatPrefixes(c.IPs), s.d.timeArg(now), actor, s.d.timeArg(spec.NotAfter)); err != nil {
			if isUniqueViolation(err) {
				// Another transaction stored the key between the count
				// and the insert (PostgreSQL; SQLite's writers take turns).
				return fmt.Errorf("%w: key id %q or its secret is stored already", ErrExists, c.KeyID)
			}
			return err
		}
		detail := describe(&c, spec.NotAfter, spec.KeepSecret)
		if err := s.record(ctx, q, now, actor, action, c.ID, c.KeyID, detail); err != nil {
			return err
		}
		r, err := s.load(ctx, q, c.KeyID, false)
		info = r.info()
		return err
	})
	if err != nil {
		return KeyInfo{}, wrapTx("store key", err)
	}
	return info, nil
}

// Rotate replaces the key keyID: it issues a new key for the same client,
// with the same prefix, kind, environment, scopes, role, address ranges
// and KeepSecret, valid at once, and lets the old key work for overlap more
// (or until its own NotAfter, if sooner). An overlap of 0 ends the old key
// at once; DefaultOverlap is 24 hours. It returns the new key, shown this
// once, and its description.
//
// Rotate fails with ErrUnknownKey, ErrRevoked, or ErrReplaced if the key
// was rotated before (rotate its replacement instead).
func (s *Store) Rotate(ctx context.Context, actor, keyID string, overlap time.Duration) (string, KeyInfo, error) {
	if err := checkActor(actor); err != nil {
		return "", KeyInfo{}, err
	}
	if overlap < 0 {
		return "", KeyInfo{}, fmt.Errorf("%w: negative overlap %v", ErrInvalid, overlap)
	}
	now := s.now()
	var key string
	var info KeyInfo
	err := s.inTx(ctx, func(q querier) error {
		old, err := s.load(ctx, q, keyID, true)
		if err != nil {
			return err
		}
		switch {
		case !old.revokedAt.t.IsZero():
			return fmt.Errorf("%w: key %q", ErrRevoked, keyID)
		case old.replacedBy.Valid:
			return fmt.Errorf("%w: key %q was replaced by %q", ErrReplaced, keyID, old.replacedBy.String)
		}
		if key, err = apiguard.GenerateKey(old.prefix); err != nil {
			return err
		}
		c := old.client()
		c.KeyID = newKeyID()
		d := sha256.Sum256([]byte(key))
		var secret any
		if old.keepSecret {
			secret = key
		}
		if _, err := q.ExecContext(ctx, s.d.q(`INSERT INTO apiguard_keys
			(key_id, client_id, digest, secret, prefix, kind, env, role, scopes, ips, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`),
			c.KeyID, c.ID, d[:], secret, old.prefix, old.kind, old.env, old.role, old.scopes, old.ips,
			s.d.timeArg(now), actor); err != nil {
			return err
		}
		end := now.Add(overlap)
		if !old.notAfter.t.IsZero() && old.notAfter.t.Before(end) {
			end = old.notAfter.t
		}
		if _, err := q.ExecContext(ctx, s.d.q(`UPDATE apiguard_keys SET not_after = $1, replaced_by = $2 WHERE key_id = $3`),
			s.d.timeArg(end), c.KeyID, keyID); err != nil {
			return err
		}
		if err := s.record(ctx, q, now, actor, "rotate", c.ID, keyID,
			fmt.Sprintf("replaced by %s; works until %s", c.KeyID, end.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		if err := s.record(ctx, q, now, actor, "issue", c.ID, c.KeyID,
			fmt.Sprintf("rotation of %s; %s", keyID, describe(c, time.Time{}, old.keepSecret))); err != nil {
			return err
		}
		r, err := s.load(ctx, q, c.KeyID, false)
		info = r.info()
		return err
	})
	if err != nil {
		return "", KeyInfo{}, wrapTx("rotate key", err)
	}
	return key, info, nil
}

// Revoke ends the key keyID at once and drops its plaintext, if kept. It
// fails with ErrUnknownKey, or ErrRevoked if the key is revoked already.
func (s *Store) Revoke(ctx context.Context, actor, keyID string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	now := s.now()
	err := s.inTx(ctx, func(q querier) error {
		r, err := s.load(ctx, q, keyID, true)
		if err != nil {
			return err
		}
		if !r.revokedAt.t.IsZero() {
			return fmt.Errorf("%w: key %q", ErrRevoked, keyID)
		}
		if _, err := q.ExecContext(ctx, s.d.q(`UPDATE apiguard_keys SET revoked_at = $1, secret = NULL WHERE key_id = $2`),
			s.d.timeArg(now), keyID); err != nil {
			return err
		}
		return s.record(ctx, q, now, actor, "revoke", r.clientID, keyID, "revoked")
	})
	return wrapTx("revoke key", err)
}

// AddIPs registers address ranges for the key keyID: once a key has any,
// it is accepted from those addresses only. Ranges registered already are
// skipped; if none is new, nothing changes. Each range must pass
// CheckPrefix. It fails with ErrUnknownKey, ErrRevoked or ErrInvalid.
func (s *Store) AddIPs(ctx context.Context, actor, keyID string, ps ...netip.Prefix) (KeyInfo, error) {
	return s.changeIPs(ctx, actor, keyID, ps, true)
}

// RemoveIPs removes address ranges registered for the key keyID. It fails
// with ErrNotRegistered, changing nothing, if one of them is not
// registered; and with ErrUnknownKey, ErrRevoked or ErrInvalid. A key left
// with no range is accepted from any address.
func (s *Store) RemoveIPs(ctx context.Context, actor, keyID string, ps ...netip.Prefix) (KeyInfo, error) {
	return s.changeIPs(ctx, actor, keyID, ps, false)
}

func (s *Store) changeIPs(ctx context.Context, actor, keyID string, ps []netip.Prefix, add bool) (KeyInfo, error) {
	if err := checkActor(actor); err != nil {
		return KeyInfo{}, err
	}
	if len(ps) == 0 {
		return KeyInfo{}, fmt.Errorf("%w: no address range given", ErrInvalid)
	}
	for i, p := range ps {
		var err error
		if ps[i], err = CheckPrefix(p); err != nil {
			return KeyInfo{}, err
		}
	}
	now := s.now()
	var info KeyInfo
	err := s.inTx(ctx, func(q querier) error {
		r, err := s.load(ctx, q, keyID, true)
		if err != nil {
			return err
		}
		if !r.revokedAt.t.IsZero() {
			return fmt.Errorf("%w: key %q", ErrRevoked, keyID)
		}
		have := r.client().IPs
		var changed []netip.Prefix
		for _, p := range sortedPrefixes(ps) {
			in := slices.Contains(have, p)
			switch {
			case add && !in:
				have = append(have, p)
				changed = append(changed, p)
			case !add && !in:
				return fmt.Errorf("%w: %s for key %q", ErrNotRegistered, p, keyID)
			case !add:
				have = slices.DeleteFunc(have, func(h netip.Prefix) bool { return h == p })
				changed = append(changed, p)
			}
		}
		if len(have) > maxIPs {
			return fmt.Errorf("%w: more than %d address ranges for one key", ErrInvalid, maxIPs)
		}
		if len(changed) > 0 {
			if _, err := q.ExecContext(ctx, s.d.q(`UPDATE apiguard_keys SET ips = $1 WHERE key_id = $2`),
				formatPrefixes(sortedPrefixes(have)), keyID); err != nil {
				return err
			}
			action := "ip-add"
			if !add {
				action = "ip-remove"
			}
			if err := s.record(ctx, q, now, actor, action, r.clientID, keyID, formatPrefixes(changed)); err != nil {
				return err
			}
		}
		r, err = s.load(ctx, q, keyID, false)
		info = r.info()
		return err
	})
	if err != nil {
		return KeyInfo{}, wrapTx("change address ranges", err)
	}
	return info, nil
}

// Key returns the description of the key keyID, or ErrUnknownKey.
func (s *Store) Key(ctx context.Context, keyID string) (KeyInfo, error) {
	r, err := s.load(ctx, s.db, keyID, false)
	if err != nil {
		return KeyInfo{}, wrapTx("read key", err)
	}
	return r.info(), nil
}

// List returns the keys of the client clientID, revoked and expired ones
// included, oldest first; never their secrets or digests. It fails with
// ErrUnknownClient if the client never had a key.
func (s *Store) List(ctx context.Context, clientID string) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT `+keyColumns+` FROM apiguard_keys
		WHERE client_id = $1 ORDER BY created_at, key_id`), clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		var r keyRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("sqlstore: list keys: %w", err)
		}
		out = append(out, r.info())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownClient, parse.Clip(clientID))
	}
	return out, nil
}

// Audit returns the recorded changes to the keys of the client clientID,
// oldest first. It fails with ErrUnknownClient if none is recorded.
func (s *Store) Audit(ctx context.Context, clientID string) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT at, actor, action, client_id, key_id, detail
		FROM apiguard_audit WHERE client_id = $1 ORDER BY id`), clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at nullTime
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.ClientID, &e.KeyID, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlstore: audit: %w", err)
		}
		e.At = at.t
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownClient, parse.Clip(clientID))
	}
	return out, nil
}

// load reads the key keyID, locking its row on PostgreSQL when forUpdate
// is set (SQLite's BEGIN IMMEDIATE locks the database).
func (s *Store) load(ctx context.Context, q querier, keyID string, forUpdate bool) (*keyRow, error) {
	query := `SELECT ` + keyColumns + ` FROM apiguard_keys WHERE key_id = $1`
	if forUpdate && s.d.pg {
		query += ` FOR UPDATE`
	}
	var r keyRow
	err := q.QueryRowContext(ctx, s.d.q(query), keyID).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return &r, fmt.Errorf("%w: %q", ErrUnknownKey, parse.Clip(keyID))
	}
	return &r, err
}

// changeRetention is how long change records are kept for watchers that
// reconnect and catch up.
const changeRetention = 7 * 24 * time.Hour

// record writes the audit entry of a change and the change record that
// watchers deliver, in the transaction of the change; on PostgreSQL it
// also notifies the listeners, which hear of it when the transaction
// commits.
func (s *Store) record(ctx context.Context, q querier, now time.Time, actor, action, clientID, keyID, detail string) error {
	if _, err := q.ExecContext(ctx, s.d.q(`INSERT INTO apiguard_audit (at, actor, action, client_id, key_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`), s.d.timeArg(now), actor, action, clientID, keyID, detail); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, s.d.q(`DELETE FROM apiguard_changes WHERE at < $1`),
		s.d.timeArg(now.Add(-changeRetention))); err != nil {
		return err
	}
	var seq int64
	if err := q.QueryRowContext(ctx, s.d.q(`INSERT INTO apiguard_changes (at, key_id, client_id) VALUES ($1, $2, $3) RETURNING seq`),
		s.d.timeArg(now), keyID, clientID).Scan(&seq); err != nil {
		return err
	}
	if s.d.pg {
		payload := formatPayload(Change{Seq: seq, KeyID: keyID, ClientID: clientID})
		if _, err := q.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, payload); err != nil {
			return err
		}
	}
	return nil
}

// wrapTx adds what was being done to a database error; the package's own
// errors pass as they are.
func wrapTx(what string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{ErrUnknownKey, ErrUnknownClient, ErrRevoked, ErrReplaced, ErrExists, ErrNotRegistered, ErrInvalid} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}

// Limits of what one key holds.
const (
	maxIDLen   = parse.MaxIDLen
	maxScopes  = 64
	maxIPs     = 256
	maxRoleLen = 64
)

// checkID checks an id an operator chose (see parse.ID).
func checkID(what, id string) error { return parse.ID(what, id) }

// checkActor checks the name an audit record gives its author: 1 to 128
// characters, none a control character.
func checkActor(actor string) error {
	if actor == "" {
		return fmt.Errorf("%w: empty actor (say who makes the change)", ErrInvalid)
	}
	if len(actor) > maxIDLen {
		return fmt.Errorf("%w: actor longer than %d characters", ErrInvalid, maxIDLen)
	}
	for _, r := range actor {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("%w: actor %q holds a control character", ErrInvalid, parse.Clip(actor))
		}
	}
	return nil
}

// checkClient checks and normalizes the identity of a key to store.
func checkClient(c *apiguard.Client) error {
	if err := checkID("client id", c.ID); err != nil {
		return err
	}
	if err := checkID("key id", c.KeyID); err != nil {
		return err
	}
	if len(c.Role) > maxRoleLen {
		return fmt.Errorf("%w: role longer than %d characters", ErrInvalid, maxRoleLen)
	}
	if c.Role != "" {
		if err := checkID("role", c.Role); err != nil {
			return err
		}
	}
	if len(c.Scopes) > maxScopes {
		return fmt.Errorf("%w: more than %d scopes", ErrInvalid, maxScopes)
	}
	for _, sc := range c.Scopes {
		if err := checkID("scope", sc); err != nil {
			return err
		}
	}
	c.Scopes = slices.Clone(c.Scopes)
	if c.Env > apiguard.Live {
		return fmt.Errorf("%w: unknown environment %d", ErrInvalid, c.Env)
	}
	if len(c.IPs) > maxIPs {
		return fmt.Errorf("%w: more than %d address ranges", ErrInvalid, maxIPs)
	}
	ips := make([]netip.Prefix, len(c.IPs))
	for i, p := range c.IPs {
		var err error
		if ips[i], err = CheckPrefix(p); err != nil {
			return err
		}
	}
	c.IPs = sortedPrefixes(ips)
	if len(c.IPs) == 0 {
		c.IPs = nil
	}
	return nil
}

func envName(e apiguard.Environment) string { return e.String() }

// formatPrefixes writes ranges as the ips column keeps them: separated by
// spaces.
func formatPrefixes(ps []netip.Prefix) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// describe tells what a stored key is, for the audit table.
func describe(c *apiguard.Client, notAfter time.Time, keep bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind=%s env=%s", kindName(c.Publishable), c.Env)
	if c.Role != "" {
		fmt.Fprintf(&b, " role=%s", c.Role)
	}
	if len(c.Scopes) > 0 {
		fmt.Fprintf(&b, " scopes=%s", strings.Join(c.Scopes, ","))
	}
	if len(c.IPs) > 0 {
		fmt.Fprintf(&b, " ips=%s", strings.ReplaceAll(formatPrefixes(c.IPs), " ", ","))
	}
	if !notAfter.IsZero() {
		fmt.Fprintf(&b, " not-after=%s", notAfter.UTC().Format(time.RFC3339))
	}
	if keep {
		b.WriteString(" keep-secret")
	}
	return b.String()
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation
// (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// newKeyID returns a random key id, "key_" and 16 hex digits.
func newKeyID() string {
	var b [8]byte
	rand.Read(b[:])
	return "key_" + hex.EncodeToString(b[:])
}
