package sqlstore

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/apiguard/apiguard/sqlstore/internal/parse"
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

// parseURL tells which driver serves a database URL and the DSN to give
// it (see parse.DatabaseURL).
func parseURL(raw string) (pg bool, dsn string, err error) { return parse.DatabaseURL(raw) }

// RedactURL returns the database URL raw with any password replaced by
// "xxxxx", for logs and error messages.
func RedactURL(raw string) string { return parse.Redact(raw) }

// passwordOf returns the password a database URL holds, or "".
func passwordOf(raw string) string { return parse.Password(raw) }
