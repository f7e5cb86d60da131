package parse

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNoURL and ErrURLScheme are what a caller sees for a missing or
// unsupported database URL.
var (
	ErrNoURL     = errors.New("sqlstore: no database URL")
	ErrURLScheme = errors.New("sqlstore: unsupported database URL (want postgres://..., sqlite:PATH or a file path)")
)

// DatabaseURL tells which driver serves a database URL and the data source
// name to give it: "postgres://" and "postgresql://" URLs (and libpq's
// "key=value" strings are not accepted, to keep the choice plain) go to
// pgx; "sqlite:PATH", "file:PATH" and plain paths go to SQLite. The SQLite
// DSN gets the pragmas the store needs (a busy timeout, WAL, foreign keys)
// unless the URL sets them.
func DatabaseURL(raw string) (pg bool, dsn string, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return false, "", ErrNoURL
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
		return false, "", ErrURLScheme
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
		q.Add("_pragma", "busy_timeout("+strconv.Itoa(int(SQLiteBusyTimeout/time.Millisecond))+")")
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

// SQLiteBusyTimeout is how long an SQLite connection waits for another
// writer before it fails.
const SQLiteBusyTimeout = 10 * time.Second

// Redact returns the database URL raw with any password replaced by
// "xxxxx", for logs and error messages: the password of the user info, and
// the value of every "password=" parameter, also in libpq's key=value form
// and in text that does not parse as a URL.
func Redact(raw string) string {
	raw = strings.TrimSpace(raw) // as DatabaseURL and Password read it
	out := raw
	if u, err := url.Parse(raw); err == nil && (u.Scheme != "" || u.User != nil || u.Host != "") {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		out = u.String()
	} else if i := strings.LastIndex(raw, "@"); err != nil && i >= 0 {
		// Unparseable, with an "@": whatever comes before the last one may
		// be credentials. Only a scheme, or the "//" of an authority, is
		// kept before it.
		start := 0
		if strings.HasPrefix(raw, "//") {
			start = 2
		} else if j := strings.Index(raw, "://"); j >= 0 && j < i && !strings.ContainsAny(raw[:j], "@/?#:") {
			start = j + 3
		}
		out = raw[:start] + "xxxxx" + raw[i:]
	}
	return redactParams(out)
}

// redactParams replaces the value of every "password=" in s, up to the
// next '&' or space.
func redactParams(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "password=")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		i += len("password=")
		b.WriteString(s[:i])
		end := strings.IndexAny(s[i:], "& \t")
		if end < 0 {
			end = len(s) - i
		}
		if end > 0 {
			b.WriteString("xxxxx")
		}
		s = s[i+end:]
	}
}

// Password returns the password a database URL holds, or "".
func Password(raw string) string {
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
