// Package stdlibexample guards the example API with the standard library's
// ServeMux and its Go 1.22 patterns (method and wildcards): no router
// needed, since apiguard's wrappers have the standard shape.
package stdlibexample

import (
	"net/http"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/examples/api"
)

// New returns the API's routes on a ServeMux.
func New(a *api.API) http.Handler {
	g := a.Guard

	// Everything under /api/ is authenticated once, by the wrapper around
	// the sub-mux; each route then adds its own scope.
	v1 := http.NewServeMux()
	v1.Handle("POST /api/v1/payments", g.RequireScope(api.ScopeCreate)(http.HandlerFunc(a.CreatePayment)))
	v1.Handle("GET /api/v1/payments/{id}", g.RequireScope(api.ScopeRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.GetPayment(w, r, r.PathValue("id"))
	})))

	// The admin group: a stack of its own in front of each of its routes.
	admin := apiguard.Chain(
		g.RequireScope(api.ScopeAdmin),
		// LIMIT(issue 5): the admin group's own rate limit goes here,
		// once the rate limiter is merged.
	)
	v1.Handle("GET /api/v1/admin/payments", admin(http.HandlerFunc(a.CountPayments)))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.Health)
	mux.Handle("/api/", g.Authenticate()(v1))
	return mux
}
