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
	// Each group's limit counts by what api.New says: /api/v1 by client
	// IP, the admin group by client.
	perIP, perAdmin := a.PerIP, a.PerAdmin

	// Everything under /api/ is limited and authenticated once, by the
	// wrappers around the sub-mux; each route then adds its own scope.
	v1 := http.NewServeMux()
	v1.Handle("POST /api/v1/payments", g.RequireScope(api.ScopeCreate)(http.HandlerFunc(a.CreatePayment)))
	v1.Handle("GET /api/v1/payments/{id}", g.RequireScope(api.ScopeRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.GetPayment(w, r, r.PathValue("id"))
	})))

	// The admin group: a stack of its own, its scope and its limit, in
	// front of each of its routes.
	admin := apiguard.Chain(g.RequireScope(api.ScopeAdmin), perAdmin)
	v1.Handle("GET /api/v1/admin/payments", admin(http.HandlerFunc(a.CountPayments)))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.Health)
	// The limit first: requests with a wrong key are counted too.
	mux.Handle("/api/", apiguard.Chain(perIP, g.Authenticate())(v1))
	return mux
}
