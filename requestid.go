package apiguard

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// A ReplayStore remembers request ids for a while, so that RequestID can
// refuse one seen before. MemoryReplayStore is the in-process store; a
// shared store (Redis) lets several replicas refuse each other's replays.
//
// Implementations must be safe for concurrent use.
type ReplayStore interface {
	// Seen records id in namespace for ttl and reports whether it was
	// fresh: true if the id was not held in that namespace (never recorded,
	// expired or forgotten), false if it was. The check and the record are
	// one atomic step, so of several concurrent calls with one id exactly
	// one is fresh. Namespaces keep ids apart: one id in two namespaces is
	// two ids. ttl is positive; an id is held through the instant its ttl
	// ends, as RequestTime's window includes its ends. RequestID's
	// namespace is a client's id or, for a publishable client, its id, a
	// NUL byte and the caller's address: a store must keep any bytes.
	//
	// An error is a backend failure (or a store that is full): nothing is
	// known of the id, and RequestID refuses the request with 503.
	Seen(ctx context.Context, namespace, id string, ttl time.Duration) (fresh bool, err error)

	// Forget removes id from namespace, so that it is fresh again. RequestID
	// calls it for an id it recorded when a later check refuses the same
	// request, so that the refusal does not use the id up. Forgetting an id
	// that is not held is not an error. On an error the id stays recorded
	// until its ttl runs out.
	Forget(ctx context.Context, namespace, id string) error
}

// maxRequestIDLen caps the length of a request id.
const maxRequestIDLen = 128

// RequestID returns a wrapper that requires a unique request id in the
// x-request-id header (the client-system API's). Ids are kept per caller,
// so that no caller can use up another's ids or make another's request
// fail. For a secret key the caller is the client g's Scheme establishes.
// A publishable key (Client.Publishable: the AppKey Scheme's x-app-key, a
// front-end client key) is public, so the client it names does not tell
// its callers apart: under it, ids are kept per client and client IP
// (Guard.ClientIP; an IPv6 address by its /64, as ByIP counts), and a
// caller who can predict another's ids cannot send them first. So under a
// publishable key a duplicate is refused when it comes from the address
// that used the id (a client's own retry, a replay from its network), and
// not from another address: such a request is another caller's, who could
// have sent it with an id of its own. Callers behind one address (a NAT)
// share its ids. The end user's own credential (a session token) is not
// used: another Guard checks it, maybe after RequestID, and ids must not
// depend on the order of the stack. Each id is recorded in
// store for retention; a zero or negative retention means the default, 10
// minutes, twice the default RequestTime window, so that any request
// RequestTime still accepts is also still remembered. A nil store means a
// new MemoryReplayStore of 100,000 ids on g's clock, for this wrapper alone:
// give wrappers one store to share ids across routes. A nil pointer of a
// store type (a *MemoryReplayStore that is nil) is a mistake of program
// start: RequestID panics with an error that names it, as RateLimit does.
//
// It refuses a request without an id with 400 (ErrMissingRequestID), an id
// that is not 1 to 128 printable ASCII characters without spaces, or sent
// in several headers, with 400 (ErrInvalidRequestID), and an id the client
// used within its retention with 409 (ErrDuplicateRequestID). Of
// concurrent requests with one id, exactly one goes through. When the
// store fails, or is full, the request is refused with 503 (ErrUnavailable):
// the wrapper fails closed, it never lets an id through unchecked. A
// MemoryReplayStore gives each client a share of its capacity (an eighth):
// a client at its share gets 503 for new ids, other clients do not.
//
// An id is used up only by a request that goes on to the handler: when a
// later wrapper of the stack refuses the request, the id is forgotten again,
// so a corrected retry with the same id goes through whatever the order of
// the stack.
//
// It needs the caller's identity and resolves it as RequireScope does:
// where g cannot establish one it refuses with 401 before looking at the id.
func (g *Guard) RequestID(store ReplayStore, retention time.Duration) Middleware {
	if retention <= 0 {
		retention = 10 * time.Minute
	}
	if store == nil {
		store = &MemoryReplayStore{now: g.now}
	} else if isNil(store) {
		panic(fmt.Errorf("apiguard: RequestID needs a ReplayStore (or nil for a memory store), not %v", nilName(store)))
	}
	// Two wrappers on one store recognize the ids each other recorded for
	// the same request. A store whose type cannot be compared with ==
	// (which would panic) gets an identity of this wrapper's own.
	var same any = store
	if !reflect.TypeOf(store).Comparable() {
		same = new(byte)
	}
	return g.wrap("request_id", true, func(_ http.ResponseWriter, r *http.Request, s *state) error {
		c, err := g.identify(s, r)
		if err != nil {
			return err
		}
		vs := r.Header["X-Request-Id"]
		switch {
		case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
			return ErrMissingRequestID
		case len(vs) > 1 || len(vs[0]) > maxRequestIDLen || !wire.ValidCredential(vs[0]):
			return ErrInvalidRequestID
		}
		ns := c.ID
		if c.Publishable {
			ns = callerNamespace(g, r, c.ID)
		}
		h := heldID{store, same, ns, vs[0]}
		var held []heldID
		if s.rare != nil {
			held = s.rare.held
		}
		for _, x := range held {
			if x.same == same && x.namespace == h.namespace && x.id == h.id {
				return nil // an outer wrapper on the same store recorded it
			}
		}
		t := s.timed()
		t0 := t.start()
		fresh, err := store.Seen(r.Context(), h.namespace, h.id, retention)
		t.replayStoreDone(t0)
		switch {
		case err != nil:
			return fmt.Errorf("%w: replay store: %w", errReplayStoreFailed, err)
		case !fresh:
			return ErrDuplicateRequestID
		}
		s.rarely().held = append(held, h)
		return nil
	})
}

// callerNamespace returns the namespace of a publishable client's request
// ids: the client's id, a NUL byte, and the caller's address as ByIP
// counts it ("ip:192.0.2.1", "ip:2001:db8:1:2::/64", or "ip:unknown" when
// ClientIP cannot tell it). MemoryReplayStore reads the part before the
// NUL as the client whose share the ids take.
func callerNamespace(g *Guard, r *http.Request, client string) string {
	var buf [128]byte // on the stack for a client id of up to 70 bytes
	b := append(append(buf[:0], client...), 0)
	b = append(b, "ip:"...)
	ip, ok := g.ClientIP(r)
	switch {
	case !ok:
		b = append(b, "unknown"...)
	case ip.Is4():
		b = ip.AppendTo(b)
	default:
		b = netip.PrefixFrom(ip.WithZone(""), 64).Masked().AppendTo(b)
	}
	return string(b)
}

// heldID is a request id a request recorded.
type heldID struct {
	store         ReplayStore
	same          any // the store, or a stand-in when it is not comparable
	namespace, id string
}

// release forgets the request ids the request recorded: it is being
// refused, and its ids must not be used up by the refusal.
func (s *state) release() {
	if s.rare == nil || len(s.rare.held) == 0 {
		return
	}
	ctx := context.WithoutCancel(s)
	for _, h := range s.rare.held {
		h.store.Forget(ctx, h.namespace, h.id) // on failure the id stays used: closed
	}
	s.rare.held = nil
}
