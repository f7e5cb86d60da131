package sqlstore

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// dialect holds what differs between PostgreSQL and SQLite.
type dialect struct {
	pg bool
}

func (d dialect) String() string {
	if d.pg {
		return "postgres"
	}
	return "sqlite"
}

// dialectOf tells the dialect of a database/sql driver.
func dialectOf(drv driver.Driver) (dialect, error) {
	switch drv.(type) {
	case *stdlib.Driver:
		return dialect{pg: true}, nil
	case *sqlite.Driver:
		return dialect{}, nil
	}
	return dialect{}, fmt.Errorf("sqlstore: unsupported driver %T (use github.com/jackc/pgx/v5/stdlib or modernc.org/sqlite)", drv)
}

// q rewrites a query written with PostgreSQL's $1 placeholders for the
// dialect: SQLite reads ?1.
func (d dialect) q(query string) string {
	if d.pg {
		return query
	}
	return strings.ReplaceAll(query, "$", "?")
}

// timeArg returns t as the dialect stores it: TIMESTAMPTZ on PostgreSQL,
// INTEGER microseconds since the Unix epoch on SQLite; NULL for the zero
// time.
func (d dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.pg {
		return t.UTC().Truncate(time.Microsecond)
	}
	return t.UnixMicro()
}

// nullTime scans a time stored by timeArg; NULL is the zero time.
type nullTime struct{ t time.Time }

func (n *nullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		n.t = time.Time{}
	case time.Time:
		n.t = v.UTC()
	case int64:
		n.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T as a time", v)
	}
	return nil
}

// Database URLs. errNoURL and errURLScheme are what a caller sees for a
// missing or unsupported URL.
var (
	errNoURL     = errors.New("sqlstore: no database URL")
	errURLScheme = errors.New("sqlstore: unsupported database URL (want postgres://..., sqlite:PATH or a file path)")
)

// parseURL tells which driver serves a database URL and the data source
// name to give it: "postgres://" and "postgresql://" URLs (and libpq's
// "key=value" strings are not accepted, to keep the choice plain) go to
// pgx; "sqlite:PATH", "file:PATH" and plain paths go to SQLite. The SQLite
// DSN gets the pragmas the store needs (a busy timeout, WAL, foreign keys)
// unless the URL sets them.
func parseURL(raw string) (pg bool, dsn string, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return false, "", errNoURL
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return false, "", errors.New("sqlstore: database URL holds a control character")
		}
	}
	lower := strings.ToLower(raw)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			return false, "", errors.New("sqlstore: malformed postgres URL")
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return false, "", errors.New("sqlstore: postgres URL names no host")
		}
		return true, raw, nil
	case strings.HasPrefix(lower, "sqlite://"):
		return false, "", errors.New("sqlstore: write sqlite:PATH, not sqlite://PATH")
	case strings.HasPrefix(lower, "sqlite:"):
		raw = raw[len("sqlite:"):]
	case strings.HasPrefix(lower, "file:"):
		// An SQLite URI filename; kept as it is.
	case strings.Contains(raw, "://") || strings.HasPrefix(lower, "mysql:"):
		return false, "", errURLScheme
	}
	path, query, _ := strings.Cut(raw, "?")
	if p := strings.TrimPrefix(path, "file:"); p == "" || p == ":memory:" || strings.HasPrefix(p, ":memory:") {
		return false, "", errors.New("sqlstore: SQLite needs a file (an in-memory database is not shared between connections)")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return false, "", errors.New("sqlstore: malformed SQLite parameters")
	}
	if q.Get("mode") == "memory" {
		return false, "", errors.New("sqlstore: SQLite needs a file (an in-memory database is not shared between connections)")
	}
	pragmas := strings.ToLower(strings.Join(q["_pragma"], ";"))
	if !strings.Contains(pragmas, "busy_timeout") && q.Get("_busy_timeout") == "" && q.Get("_timeout") == "" {
		q.Add("_pragma", "busy_timeout("+strconv.Itoa(int(sqliteBusyTimeout/time.Millisecond))+")")
	}
	if !strings.Contains(pragmas, "journal_mode") && q.Get("_journal_mode") == "" && q.Get("_journal") == "" {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	if !strings.Contains(pragmas, "foreign_keys") && q.Get("_foreign_keys") == "" && q.Get("_fk") == "" {
		q.Add("_pragma", "foreign_keys(1)")
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return false, path + "?" + q.Encode(), nil
}

// sqliteBusyTimeout is how long an SQLite connection waits for another
// writer before it fails.
const sqliteBusyTimeout = 10 * time.Second

// RedactURL returns the database URL raw with any password replaced by
// "xxxxx", for logs and error messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 && strings.Contains(raw[:i], "://") {
			return raw[:strings.Index(raw, "://")+3] + "xxxxx" + raw[i:]
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// passwordOf returns the password a database URL holds, or "".
func passwordOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	return u.Query().Get("password")
}
