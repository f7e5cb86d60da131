package apiguard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"
	"unsafe"
)

// Middleware is the standard shape of an HTTP wrapper. Every wrapper in this
// package has it, so it drops into a ServeMux chain, chi's r.Use, alice, and
// gin or echo through their adapters.
type Middleware = func(http.Handler) http.Handler

// Chain composes wrappers, outermost first: Chain(a, b, c)(h) is
// a(b(c(h))). Chain() returns a wrapper that returns h itself.
func Chain(mw ...Middleware) Middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mw) - 1; i >= 0; i-- {
			h = mw[i](h)
		}
		return h
	}
}

// A Scheme establishes who is calling from a request: an API key, Basic
// credentials, a hash signature, a session token. It returns the client, or
// an error matching one of the package's sentinels (ErrMissingKey when the
// request carries no credentials at all, ErrInvalidKey when they do not
// check out, ErrUnavailable when a backend fails).
//
// A Scheme must be safe for concurrent use and must not keep the request.
// A Scheme that reads the request body reads it with ReadBody, so that
// other Schemes, wrappers and the handler see the same bytes.
//
// Two methods are optional. A Scheme with a method
//
//	Challenge() string
//
// gives the WWW-Authenticate value of its 401 responses, such as
// `Bearer realm="api"`. A Scheme with a method
//
//	Validate() error
//
// has it called by New, which fails with its error: a Scheme checks its
// configuration there, once, rather than on every request.
type Scheme interface {
	Authenticate(r *http.Request) (*Client, error)
}

// Guard holds what the wrappers of one API share: the Scheme that
// establishes the caller's identity, the Dialect that renders rejections,
// the clock, the environment, client-IP resolution, the observer and the
// logger.
// Wrappers are made from it (g.Authenticate(), g.RequireScope(...), ...).
//
// Stack in any order: the first wrapper of a Guard that runs on a request
// puts a per-request state in the context; the first wrapper that needs the
// caller's identity resolves it through the Guard's Scheme, once, and every
// other wrapper and the handler share the result. So a wrapper that needs
// an identity (a scope check, a per-client limit, a registered-IP check)
// works outside or inside Authenticate, and a Guard with no Scheme fails
// such wrappers closed with 401. When several checks would fail, the body is
// that of the first one that runs.
//
// Build every wrapper of a stack from one Guard, or from Guards that agree
// on who the caller is: a request that two Guards authenticate as two
// different clients is refused (ErrIdentityConflict). The one exception is
// an application beside an account: an identity from a publishable key
// (the client-system app of AppKey, a front-end client key) may stand
// beside the identity of a user or merchant, and ClientFrom then returns
// the latter, whatever the order of the stack.
//
// The zero Guard is not usable; build one with New (or MustNew). A Guard is
// safe for concurrent use.
type Guard struct {
	scheme    Scheme
	challenge string
	dialect   Dialect
	now       func() time.Time
	env       Environment
	ip        ipResolver
	observe   func(Decision)
	logger    *slog.Logger
	budget    *bodyBudget   // bytes of bodies buffered by the requests in flight
	readsBody bool          // the Scheme reads request bodies (a hash signature)
	failures  *failureLimit // WithFailureLimit; nil: none
}

// New returns a Guard that establishes identity with scheme. A nil scheme
// makes a Guard for checks that need no identity (an IP whitelist, HTTPS
// only); its identity wrappers refuse every request with 401.
func New(scheme Scheme, opts ...Option) (*Guard, error) {
	c, err := configure(toGuard, opts)
	if err != nil {
		return nil, err
	}
	g := &Guard{scheme: scheme, dialect: Problem(), now: c.clock(), env: c.env, ip: c.ip, observe: c.observe, logger: c.logger, failures: c.failures}
	g.budget = newBodyBudget(c.bodyBudget)
	if c.dialect != nil {
		g.dialect = c.dialect
	}
	if scheme != nil {
		if isNil(scheme) {
			return nil, fmt.Errorf("apiguard: New: a nil %T as the Scheme", scheme)
		}
		if v, ok := scheme.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return nil, err
			}
		}
		if ch, ok := scheme.(interface{ Challenge() string }); ok {
			g.challenge = ch.Challenge()
		}
		if h, ok := scheme.(*hashScheme); ok {
			g.readsBody = h.readBody
		}
	}
	return g, nil
}

// MustNew is like New but panics on a configuration error. It is meant for
// program start.
func MustNew(scheme Scheme, opts ...Option) *Guard {
	g, err := New(scheme, opts...)
	if err != nil {
		panic(err)
	}
	return g
}

// stateKey is the context key of the per-request state.
type stateKey struct{}

// state is the per-request state. It is itself the request's context, so
// that setting it up costs one allocation. It is kept to 80 bytes, so that
// with the request that carries it it fills a 384-byte allocation (see
// TestCarrierSize): what few requests need lives in rare.
type state struct {
	context.Context

	client  *Client // the caller, once a scheme (or NewContext) named one
	authed  bool    // client came from a Scheme rather than NewContext
	carried bool    // s is the st of a carrier, whose req carries it (see own)

	// The identity as the first Guard to resolve one saw it: firstG's
	// client, or nil when it refused (its error is rare.firstErr).
	firstG      *Guard
	firstClient *Client

	rare *stateRare // what few requests need; nil until one does

	body  *keptBody  // nil until something reads the body
	spare *keptSmall // room for a small body that came with the state; nil for none

	budget *bodyBudget // where body reads reserve bytes; nil for none
}

// stateRare is the part of a request's state that few requests need, kept
// apart so that the state of the others is smaller (see carrier).
type stateRare struct {
	firstErr error    // the first Guard's refusal
	more     []memo   // further Guards' views of the identity
	held     []heldID // request ids this request recorded, released if it is refused
	timing   *timing  // what the decision under way measures; nil until observed
}

// rarely returns s's rare part, making it on first use.
func (s *state) rarely() *stateRare {
	if s.rare == nil {
		s.rare = new(stateRare)
	}
	return s.rare
}

// own returns the request begin made to carry s, nil for a state from
// NewContext. A carried state is the first field of its carrier (of every
// kind of carrier), so the carrier is found at s's own address.
func (s *state) own() *http.Request {
	if !s.carried {
		return nil
	}
	return &(*carrier)(unsafe.Pointer(s)).req
}

// timing returns s's timing, nil until an observer watched a decision.
func (s *state) timing() *timing {
	if s.rare == nil {
		return nil
	}
	return s.rare.timing
}

type memo struct {
	g      *Guard
	client *Client
	err    error
}

func (s *state) Value(key any) any {
	if key == (stateKey{}) {
		return s
	}
	return s.Context.Value(key)
}

func stateFrom(ctx context.Context) *state {
	s, _ := ctx.Value(stateKey{}).(*state)
	return s
}

// begin returns the request's state, creating it (and the request carrying
// it) if this is the first apiguard wrapper to run.
func begin(r *http.Request) (*state, *http.Request) {
	if s := stateFrom(r.Context()); s != nil {
		return s, r
	}
	// One allocation holds both the state and the request that carries it:
	// WithContext is inlined and its copy does not escape.
	c := &carrier{st: state{Context: r.Context(), carried: true}}
	c.req = *r.WithContext(&c.st)
	return &c.st, &c.req
}

// carrier is the one allocation begin makes. st must stay its first field
// (see state.own).
type carrier struct {
	st  state
	req http.Request
}

// bodyCarrier is a carrier with room for a small body, the one allocation
// of a request whose Guard's Scheme reads bodies (see beginFor).
type bodyCarrier struct {
	carrier
	body keptSmall
}

// beginFor is begin for a wrapper of g: when g's Scheme reads the body and
// r's is small and of known length, the body's room comes in the same
// allocation as the state.
func beginFor(g *Guard, r *http.Request) (*state, *http.Request) {
	if !g.readsBody || r.ContentLength <= 0 || r.ContentLength > smallBody || stateFrom(r.Context()) != nil {
		return begin(r)
	}
	c := &bodyCarrier{carrier: carrier{st: state{Context: r.Context(), carried: true}}}
	c.req = *r.WithContext(&c.st)
	c.st.spare = &c.body
	return &c.st, &c.req
}

// timedCarrier is the one allocation of a request whose first wrapper is
// observed: the carrier, and the rare part of its state with the timing
// its decisions share.
type timedCarrier struct {
	carrier
	rare stateRare
	tm   timing
}

// identify returns the caller as g's Scheme sees it, resolving it once per
// request and Guard.
func (g *Guard) identify(s *state, r *http.Request) (*Client, error) {
	if s.firstG == g {
		if s.firstClient == nil {
			return nil, s.rare.firstErr
		}
		return s.firstClient, nil
	}
	if s.rare != nil {
		for _, m := range s.rare.more {
			if m.g == g {
				return m.client, m.err
			}
		}
	}
	var c *Client
	err := ErrMissingKey
	refused := g.failures.admit(g, r, s) // a caller out of failed attempts
	if refused != nil {
		err = refused
	} else if g.scheme != nil {
		c, err = g.scheme.Authenticate(r)
		if err == nil && c == nil {
			err = errNoClient // a Scheme that names nobody authenticates nobody
		}
	}
	if err == nil && g.env != AnyEnvironment && c.Env != g.env {
		err = errWrongEnvironment
		if c.Env == AnyEnvironment {
			err = errUnknownEnvironment
		}
	}
	if err == nil && s.authed && s.client.ID != c.ID && s.client.Publishable == c.Publishable {
		err = ErrIdentityConflict
	}
	if err != nil {
		c = nil
		if refused == nil {
			g.failures.count(g, r, s, err)
		}
	} else if !s.authed || s.client.Publishable && !c.Publishable {
		s.client, s.authed = c, true
	}
	if s.firstG == nil {
		s.firstG, s.firstClient = g, c
		if err != nil {
			s.rarely().firstErr = err
		}
	} else {
		s.rarely().more = append(s.rarely().more, memo{g, c, err})
	}
	return c, err
}

// Identify returns the client g's Scheme finds in r, using and filling the
// request's state when an apiguard wrapper has set one up. It is the
// decision behind Authenticate, for handlers that check by hand. When the
// Scheme reads the body (a hash signature), Identify puts the same bytes
// back on r.Body, so the handler can still read them.
func (g *Guard) Identify(r *http.Request) (*Client, error) {
	s, r2 := begin(r)
	if r2 != r { // a state of its own: its body bytes are given back on return
		s.budget = g.budget
		defer s.done()
	}
	c, err := g.identify(s, r2)
	s.restore(r)
	return c, err
}

// A check is what a wrapper decides for one request: nil lets the request
// through, an error refuses it (rendered as Deny renders it). s is the
// request's state, nil unless the wrapper asked for it (see wrap) or an
// earlier wrapper set it up. A check may set headers on w, for the
// response it lets through or for its refusal.
type check func(w http.ResponseWriter, r *http.Request, s *state) error

// wrap makes a Middleware from c: the one way every wrapper of the package
// is built. A wrapper that needs the request's state (the caller's
// identity, the kept body, the request ids) says so with needState, and
// the state is set up before c runs; one that does not (an IP whitelist, a
// rate limit by IP) costs no allocation for a request it lets through, and
// sets the state up only to refuse one. Whatever it decides, the request it
// hands on carries the kept body, if a check read it.
//
// name is the wrapper's name in a Decision. Where g has an observer, the
// observed path sets the state up for every request, times the stores
// the check calls and reports the decision; without one the only cost is
// the nil check.
func (g *Guard) wrap(name string, needState bool, c check) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g.observe != nil {
				g.observed(name, c, next, w, r)
				return
			}
			s := stateFrom(r.Context())
			if needState && s == nil {
				s, r = beginFor(g, r)
				s.budget = g.budget
				defer s.done()
			}
			if err := c(w, r, s); err != nil {
				if s == nil {
					s, r = begin(r)
				}
				g.deny(w, r, s, err, name)
				return
			}
			if s != nil {
				r = s.handOn(r)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Authenticate returns a wrapper that refuses requests whose caller g's
// Scheme cannot establish (401 with the dialect's body), and puts the
// client in the context of the others (see ClientFrom).
func (g *Guard) Authenticate() Middleware {
	return g.wrap("authenticate", true, func(_ http.ResponseWriter, r *http.Request, s *state) error {
		_, err := g.identify(s, r)
		return err
	})
}

// RequireScope returns a wrapper that refuses, with 403 (ErrForbidden),
// callers that lack any of scopes. It needs the caller's identity: where g
// cannot establish one it refuses with 401, whether or not Authenticate
// runs before it.
func (g *Guard) RequireScope(scopes ...string) Middleware {
	return g.wrap("require_scope", true, func(_ http.ResponseWriter, r *http.Request, s *state) error {
		c, err := g.identify(s, r)
		if err != nil {
			return err
		}
		for _, sc := range scopes {
			if !slices.Contains(c.Scopes, sc) {
				return ErrForbidden
			}
		}
		return nil
	})
}

// Deny writes err as g's dialect renders it: an *Error as it is, a reason
// sentinel (or an error wrapping one) with its status and code, and any
// other error as a 500 whose text is never shown. It reports the refusal
// to the observer (a Decision whose Wrapper is "deny") and the logger.
// Handlers use it so that their own errors share the API's envelope.
func (g *Guard) Deny(w http.ResponseWriter, r *http.Request, err error) {
	s, r := begin(r)
	g.render(w, r, s, err, "deny")
}

// deny refuses a request a wrapper stopped: the request ids it recorded are
// given back (a refused request uses none up, whatever the order of the
// stack), then err is rendered, as the refusal of the wrapper named
// wrapper. A handler's own Deny keeps them: the request was handled.
func (g *Guard) deny(w http.ResponseWriter, r *http.Request, s *state, err error, wrapper string) {
	s.release()
	g.render(w, r, s, err, wrapper)
}

// observed is wrap's path for a Guard with an observer: c decides for r,
// with the stores' calls timed, and the decision is reported before the
// request is refused or handed on.
func (g *Guard) observed(name string, c check, next http.Handler, w http.ResponseWriter, r *http.Request) {
	s := stateFrom(r.Context())
	switch {
	case s == nil:
		// The state and the timing in one allocation, as begin does.
		c := &timedCarrier{carrier: carrier{st: state{Context: r.Context(), carried: true}}}
		c.req = *r.WithContext(&c.st)
		c.rare.timing = &c.tm
		c.st.rare = &c.rare
		s, r = &c.st, &c.req
		s.budget = g.budget
		defer s.done()
	case s.timing() == nil:
		s.rarely().timing = new(timing) // kept for the request's other decisions
	}
	tm := s.timing()
	*tm = timing{now: g.now}
	err := c(w, r, s)
	if err != nil {
		g.deny(w, r, s, err, name)
		*tm = timing{}
		return
	}
	d := Decision{Guard: g, Wrapper: name, Allowed: true, Request: r}
	tm.fill(&d)
	*tm = timing{}
	if s.authed {
		d.Client = s.client
	}
	g.observe(d)
	next.ServeHTTP(w, s.handOn(r))
}

// render writes err in g's dialect, after the observer and the logger,
// as the refusal of the wrapper named wrapper.
func (g *Guard) render(w http.ResponseWriter, r *http.Request, s *state, err error, wrapper string) {
	e := NewError(err)
	var client *Client
	if s.authed {
		client = s.client
	}
	if g.observe != nil || g.logger != nil {
		cause := causeOf(err)
		if g.observe != nil {
			d := Decision{Guard: g, Wrapper: wrapper, Err: e, Cause: cause, Client: client, Request: r}
			s.timing().fill(&d)
			g.observe(d)
		}
		if g.logger != nil {
			g.log(r, e, cause, wrapper, client)
		}
	}
	e.writeHeaders(w.Header(), g.challenge)
	g.dialect.WriteError(w, r, e)
}

// ClientFrom returns the client an apiguard wrapper authenticated for the
// request whose context is ctx (or that NewContext put there).
func ClientFrom(ctx context.Context) (*Client, bool) {
	s := stateFrom(ctx)
	if s == nil || s.client == nil {
		return nil, false
	}
	return s.client, true
}

// NewContext returns a copy of ctx carrying c, for tests of handlers that
// call ClientFrom. Wrappers do not take c as proven: they still resolve the
// caller through their Scheme, and the client they find replaces c.
func NewContext(ctx context.Context, c *Client) context.Context {
	return &state{Context: ctx, client: c}
}

// Check returns a wrapper that refuses requests for which check returns an
// error, rendered as Deny renders it, so that checks of one's own share the
// API's envelope and observer. A check of the caller (an account that must
// be active, say) calls g.Identify(r) first: inside Check it resolves the
// identity once per request, as RequireScope does, and its error (401 where
// g cannot establish an identity) is the refusal.
//
//	active := g.Check(func(r *http.Request) error {
//		c, err := g.Identify(r)
//		if err != nil {
//			return err
//		}
//		return checkActive(c.ID)
//	})
func (g *Guard) Check(check func(r *http.Request) error) Middleware {
	return g.wrap("check", true, func(_ http.ResponseWriter, r *http.Request, _ *state) error { return check(r) })
}

// RequireHTTPS returns a wrapper that refuses requests that did not arrive
// over HTTPS with 403 (ErrHTTPSRequired; "HTTPS required" in the Pay88
// dialect). A request arrived over HTTPS when r.TLS is set, or when its
// peer is a trusted proxy (WithTrustedProxies) whose X-Forwarded-Proto, the
// rightmost value, is "https". X-Forwarded-Proto from any other peer is
// ignored. Plain HTTP is refused, never redirected: a redirect would have
// sent the credentials in the clear already, and clients do not replay a
// POST body across one.
func (g *Guard) RequireHTTPS() Middleware {
	return g.wrap("require_https", false, func(_ http.ResponseWriter, r *http.Request, _ *state) error {
		if r.TLS != nil || g.ip.viaHTTPS(r.RemoteAddr, r.Header) {
			return nil
		}
		return ErrHTTPSRequired
	})
}

// RequireJSON returns a wrapper for JSON APIs (such as Midtrans'). A request
// with a body must say "Content-Type: application/json" (parameters allowed;
// a charset, if given, must be UTF-8), or it is refused with 415
// (ErrUnsupportedMediaType). Every request must accept a JSON answer: no
// Accept header (or an empty one), or one whose most specific range that
// matches application/json (application/json, application/*, */*) has a
// q-value above 0; otherwise it is refused with 406 (ErrNotAcceptable).
// Ranges that do not parse are ignored. When both fail, 415 is the answer.
func (g *Guard) RequireJSON() Middleware {
	return g.wrap("require_json", false, func(_ http.ResponseWriter, r *http.Request, _ *state) error {
		if hasBody(r) && !isJSONContentType(r.Header["Content-Type"]) {
			return ErrUnsupportedMediaType
		}
		if !acceptsJSON(r.Header["Accept"]) {
			return ErrNotAcceptable
		}
		return nil
	})
}
