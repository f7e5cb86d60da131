// Package api is the small payments API that the router examples guard
// with apiguard: the same handlers, wired into chi, gin, echo and the
// standard library's ServeMux by the sibling packages.
//
// Routes (MockPay's envelope, sandbox keys only):
//
//	GET  /healthz                   open
//	POST /api/v1/payments           scope payment:create
//	GET  /api/v1/payments/{id}      scope payment:read; a client sees only its own payments
//	GET  /api/v1/admin/payments     the admin group: scope admin for every route
//
// Each route group has its own rate limit: every /api/v1 route 60 requests
// a minute per client IP, counted before the key is checked (so that
// guessing keys is counted too), and the admin group 10 a minute per admin
// client on top of it.
package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/apiguard/apiguard"
)

// The scopes the routes require.
const (
	ScopeCreate = "payment:create"
	ScopeRead   = "payment:read"
	ScopeAdmin  = "admin"
)

// The rate limits of the route groups, in requests a minute.
const (
	PerIPPerMinute = 60 // every /api/v1 route, per client IP
	AdminPerMinute = 10 // the admin group, per client
)

// maxPayments bounds the in-memory store.
const maxPayments = 10_000

// Payment is one payment of a client.
type Payment struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	Status  string `json:"status"`
	Client  string `json:"client"`
}

// API holds the Guard that protects the routes and the payments they
// serve. Its handlers are plain http.HandlerFuncs; the routers add the
// wrappers.
type API struct {
	Guard *apiguard.Guard

	// PerIP limits the requests to /api/v1 by client IP, PerIPPerMinute a
	// minute; PerAdmin limits the admin group's by client, AdminPerMinute a
	// minute. The routers place them: PerIP before Authenticate (so that
	// requests with a wrong key are counted too), PerAdmin after the
	// group's scope check.
	PerIP, PerAdmin apiguard.Middleware

	mu       sync.Mutex
	payments map[string]map[string]Payment // client id -> order id -> payment
	n        int
}

// New returns an API whose Guard checks Bearer server keys from keys,
// accepts sandbox keys only and answers in MockPay's envelope, and whose
// limiters count on the clock now (nil means time.Now; pass a test clock
// to move time instead of sleeping). opts are added to the Guard's (an
// observer); the Guard runs on now too.
func New(keys apiguard.KeyStore, now func() time.Time, opts ...apiguard.Option) (*API, error) {
	if now == nil {
		now = time.Now
	}
	opts = append([]apiguard.Option{apiguard.WithDialect(apiguard.MockPay()), apiguard.WithEnvironment(apiguard.Sandbox), apiguard.WithClock(now)}, opts...)
	g, err := apiguard.New(apiguard.Bearer(keys), opts...)
	if err != nil {
		return nil, err
	}
	perIP, err := limit(g, now, PerIPPerMinute, apiguard.ByIP())
	if err != nil {
		return nil, err
	}
	perAdmin, err := limit(g, now, AdminPerMinute, apiguard.ByClient())
	if err != nil {
		return nil, err
	}
	return &API{Guard: g, PerIP: perIP, PerAdmin: perAdmin, payments: map[string]map[string]Payment{}}, nil
}

// limit returns g's wrapper allowing perMinute requests a minute for each
// key that key names.
func limit(g *apiguard.Guard, now func() time.Time, perMinute int, key apiguard.Bucket) (apiguard.Middleware, error) {
	l, err := apiguard.NewMemoryLimiter([]apiguard.Window{apiguard.PerMinute(perMinute)}, apiguard.WithClock(now))
	if err != nil {
		return nil, err
	}
	return g.RateLimit(l, key), nil
}

// Add stores p for p.Client, as if it had been created.
func (a *API) Add(p Payment) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= maxPayments {
		return fmt.Errorf("api: store full")
	}
	if a.payments[p.Client] == nil {
		a.payments[p.Client] = map[string]Payment{}
	}
	if _, dup := a.payments[p.Client][p.OrderID]; dup {
		return fmt.Errorf("api: order %q exists", p.OrderID)
	}
	a.payments[p.Client][p.OrderID] = p
	a.n++
	return nil
}

// Errors of the handlers, in the API's envelope (Guard.Deny renders them).
var (
	errNotFound  = &apiguard.Error{Status: http.StatusNotFound, Code: "not_found", Message: "Payment not found"}
	errDuplicate = &apiguard.Error{Status: http.StatusConflict, Code: "duplicate_order", Message: "order_id already used"}
	errFull      = &apiguard.Error{Status: http.StatusServiceUnavailable, Code: "store_full", Message: "Try again later"}
)

// Health answers 200 "ok".
func (a *API) Health(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("ok"))
}

// CreatePayment creates a pending payment for the client in the context
// from {"order_id":"...","amount":N}.
func (a *API) CreatePayment(w http.ResponseWriter, r *http.Request) {
	c, ok := apiguard.ClientFrom(r.Context())
	if !ok { // a wiring mistake: fail closed
		a.Guard.Deny(w, r, apiguard.ErrMissingKey)
		return
	}
	var in struct {
		OrderID string `json:"order_id"`
		Amount  int64  `json:"amount"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.OrderID == "" || in.Amount <= 0 {
		a.Guard.Deny(w, r, apiguard.ErrInvalidBody)
		return
	}
	p := Payment{OrderID: in.OrderID, Amount: in.Amount, Status: "pending", Client: c.ID}
	if err := a.Add(p); err != nil {
		a.mu.Lock()
		full := a.n >= maxPayments
		a.mu.Unlock()
		if full {
			a.Guard.Deny(w, r, errFull)
		} else {
			a.Guard.Deny(w, r, errDuplicate)
		}
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// GetPayment answers the payment id of the client in the context; another
// client's payment is 404, as if it did not exist.
func (a *API) GetPayment(w http.ResponseWriter, r *http.Request, id string) {
	c, ok := apiguard.ClientFrom(r.Context())
	if !ok {
		a.Guard.Deny(w, r, apiguard.ErrMissingKey)
		return
	}
	a.mu.Lock()
	p, found := a.payments[c.ID][id]
	a.mu.Unlock()
	if !found {
		a.Guard.Deny(w, r, errNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// CountPayments answers the number of payments of every client, for the
// admin group.
func (a *API) CountPayments(w http.ResponseWriter, r *http.Request) {
	c, ok := apiguard.ClientFrom(r.Context())
	if !ok {
		a.Guard.Deny(w, r, apiguard.ErrMissingKey)
		return
	}
	a.mu.Lock()
	n := a.n
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"payments": n, "admin": c.ID})
}

// writeJSON writes MockPay's success envelope around data.
func writeJSON(w http.ResponseWriter, status int, data any) {
	b, err := json.Marshal(map[string]any{"success": true, "data": data})
	if err != nil {
		http.Error(w, `{"success":false}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
