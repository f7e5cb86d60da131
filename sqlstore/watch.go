package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore/internal/parse"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// notifyChannel is the PostgreSQL channel changes are notified on.
const notifyChannel = "apiguard_keys"

// replayWindow is how many change records before the last one seen a
// PostgreSQL watcher replays when it reconnects. Sequence numbers are taken
// when a change is written, not when it commits, so a change with a lower
// number may commit after one with a higher number; replaying a few more
// than needed costs a cache entry at most.
const replayWindow = 64

// Reconnect backoff of a PostgreSQL watcher, and how long it waits for a
// notification before it checks that its connection is alive.
const (
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 5 * time.Second
	pingTimeout = 5 * time.Second
)

// pingEvery is a variable for the test of idle connections.
var pingEvery = 30 * time.Second

// Change tells that a key changed: it was issued, rotated, revoked, or its
// address ranges changed. Watchers deliver it to every replica.
type Change struct {
	// Seq numbers the change in the apiguard_changes table; it is 0 when a
	// watcher found that it missed changes and tells of every key.
	Seq      int64
	KeyID    string // the key that changed
	ClientID string // the client it belongs to
}

// A Forgetter drops what it cached for a key id: a cache in front of the
// Store, such as apiguard.CachedKeyStore. Invalidate makes one a Watch
// callback.
type Forgetter interface {
	Forget(keyID string)
}

var _ Forgetter = (*apiguard.CachedKeyStore)(nil)

// Invalidate returns a Watch callback that tells f to forget every key
// that changes, by its key id: with an apiguard.CachedKeyStore, a revoked
// or rotated key stops working from the cache as soon as the change
// arrives. A key added or issued needs no forgetting (a cache holds no
// entry for a key that was never stored, unless a lookup of it failed
// first; such an entry lasts the cache's negative TTL).
func Invalidate(f Forgetter) func(Change) {
	return func(c Change) { f.Forget(c.KeyID) }
}

// Watcher delivers the changes to the Store's keys, made by this process
// or any other, to a callback; see Store.Watch. It runs one goroutine until
// Close.
type Watcher struct {
	s      *Store
	fn     func(Change)
	cancel context.CancelFunc
	done   chan struct{}
	last   int64 // the highest sequence number delivered or skipped
}

// Watch calls fn, from a goroutine of its own and one change at a time,
// for each change to a key committed after Watch returns, by this Store or
// another on the same database; fn must not block for long. Give it
// Invalidate(cache) to keep a cache in front of the Store up to date.
//
// On PostgreSQL, changes arrive by LISTEN/NOTIFY within milliseconds of
// the commit, on a connection that the Watcher takes from the Store's pool
// and holds (so the pool needs room for one connection per Watcher). If the
// connection breaks, the Watcher reconnects with backoff (50 ms doubling
// to 5 s) and replays the changes it may have missed from the change table;
// it checks an idle connection every 30 s. On SQLite, it polls the change
// table (WithPollInterval, 500 ms by default). A Watcher that finds it
// missed changes no longer recorded (after a week away) calls fn for every
// key with Seq 0. Errors go to the Store's error handler (WithErrorHandler).
//
// Watch fails if it cannot reach the database. Stop the Watcher with
// Close; closing the Store closes its watchers.
func (s *Store) Watch(fn func(Change)) (*Watcher, error) {
	if fn == nil {
		return nil, errors.New("sqlstore: Watch needs a function")
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{s: s, fn: fn, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, errors.New("sqlstore: Watch on a closed Store")
	}
	if s.watchers == nil {
		s.watchers = make(map[*Watcher]struct{})
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()

	ready := make(chan error, 1)
	if s.d.pg {
		go w.listenLoop(ctx, ready)
	} else {
		go w.pollLoop(ctx, ready)
	}
	if err := <-ready; err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: watch: %w", err)
	}
	return w, nil
}

// Close stops the Watcher and waits for its goroutine to end. It is safe to
// call more than once.
func (w *Watcher) Close() error {
	w.cancel()
	<-w.done
	w.s.mu.Lock()
	delete(w.s.watchers, w)
	w.s.mu.Unlock()
	return nil
}

// pollLoop watches an SQLite database by polling the change table.
func (w *Watcher) pollLoop(ctx context.Context, ready chan<- error) {
	defer close(w.done)
	if err := w.s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM apiguard_changes`).Scan(&w.last); err != nil {
		ready <- err
		return
	}
	ready <- nil
	t := time.NewTicker(w.s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.catchUp(ctx, sqlSource{w.s.db}, w.last); err != nil && ctx.Err() == nil {
			w.s.onError(fmt.Errorf("sqlstore: watch: %w", err))
		}
	}
}

// changeSource reads the change table: through database/sql, or through
// the pgx connection a PostgreSQL watcher holds.
type changeSource interface {
	query(ctx context.Context, sql string, args ...any) (rowScanner, error)
}

// rowScanner is what *sql.Rows and pgx.Rows share.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type sqlSource struct{ db *sql.DB }

func (s sqlSource) query(ctx context.Context, q string, args ...any) (rowScanner, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type pgxSource struct{ c *pgx.Conn }

func (s pgxSource) query(ctx context.Context, q string, args ...any) (rowScanner, error) {
	return s.c.Query(ctx, q, args...)
}

// queryChanges reads the rows of a query whose columns are a sequence
// number, a key id and a client id.
func queryChanges(ctx context.Context, src changeSource, q string, args ...any) ([]Change, error) {
	rows, err := src.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cs []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Seq, &c.KeyID, &c.ClientID); err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// catchUp delivers the recorded changes numbered above after (w.last, or
// less to replay some). If records just above w.last are gone (pruned), it
// first tells of every key.
func (w *Watcher) catchUp(ctx context.Context, src changeSource, after int64) error {
	cs, err := queryChanges(ctx, src, w.s.d.q(`SELECT seq, key_id, client_id FROM apiguard_changes WHERE seq > $1 ORDER BY seq`), after)
	if err != nil {
		return err
	}
	if len(cs) > 0 && w.last > 0 && cs[0].Seq > w.last+1 && cs[0].Seq > after+1 {
		// Sequence numbers may skip (a rolled-back write, PostgreSQL's
		// sequence cache); records are missing only if the oldest kept one
		// is newer than the last seen.
		old, err := queryChanges(ctx, src, `SELECT COALESCE(MIN(seq), 0), '', '' FROM apiguard_changes`)
		if err != nil {
			return err
		}
		if len(old) == 1 && old[0].Seq > w.last+1 {
			all, err := queryChanges(ctx, src, `SELECT 0, key_id, client_id FROM apiguard_keys`)
			if err != nil {
				return err
			}
			for _, c := range all {
				w.fn(c)
			}
		}
	}
	for _, c := range cs {
		w.fn(c)
		w.last = max(w.last, c.Seq)
	}
	return nil
}

// listenLoop watches a PostgreSQL database by LISTEN, reconnecting when the
// connection breaks.
func (w *Watcher) listenLoop(ctx context.Context, ready chan<- error) {
	defer close(w.done)
	backoff := minBackoff
	first := true
	for {
		connected := false
		err := w.listen(ctx, first, func() {
			connected = true
			if first {
				ready <- nil
				first = false
			}
			backoff = minBackoff
		})
		if ctx.Err() != nil {
			if first {
				ready <- ctx.Err()
			}
			return
		}
		if first {
			ready <- err
			return
		}
		if !connected {
			backoff = min(backoff*2, maxBackoff)
		}
		w.s.onError(fmt.Errorf("sqlstore: watch: reconnecting: %w", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// listen holds one connection: it listens, catches up on what it may have
// missed (or, on the first connection, notes where the changes stand),
// calls connected, and delivers notifications until the connection breaks
// or ctx is done. The connection is discarded after, not returned to the
// pool.
func (w *Watcher) listen(ctx context.Context, first bool, connected func()) error {
	conn, err := w.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var lerr error
	conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			lerr = fmt.Errorf("not a pgx connection: %T", dc)
			return driver.ErrBadConn
		}
		lerr = w.listenOn(ctx, sc.Conn(), first, connected)
		// A connection that listened never goes back to the pool.
		return driver.ErrBadConn
	})
	return lerr
}

func (w *Watcher) listenOn(ctx context.Context, pc *pgx.Conn, first bool, connected func()) error {
	// The name shows operators the connection in pg_stat_activity.
	if _, err := pc.Exec(ctx, "SET application_name = 'apiguard-watch'; LISTEN "+notifyChannel); err != nil {
		return err
	}
	if first {
		if err := pc.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM apiguard_changes`).Scan(&w.last); err != nil {
			return err
		}
	} else if err := w.catchUp(ctx, pgxSource{pc}, max(w.last-replayWindow, 0)); err != nil {
		return err
	}
	connected()
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := pc.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !pc.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = pc.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		c, err := parsePayload(n.Payload)
		if err != nil {
			w.s.onError(fmt.Errorf("sqlstore: watch: %w", err))
			continue
		}
		w.fn(c)
		w.last = max(w.last, c.Seq)
	}
}

// formatPayload writes a change as a notification's payload (see
// parse.FormatPayload).
func formatPayload(c Change) string {
	return parse.FormatPayload(parse.Payload{Seq: c.Seq, KeyID: c.KeyID, ClientID: c.ClientID})
}

// parsePayload reads a notification's payload (see parse.ParsePayload).
func parsePayload(s string) (Change, error) {
	p, err := parse.ParsePayload(s)
	return Change{Seq: p.Seq, KeyID: p.KeyID, ClientID: p.ClientID}, err
}
