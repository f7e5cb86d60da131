// Package chiexample guards the example API with chi: apiguard's wrappers
// go straight into r.Use and r.With, and a route group takes its own.
package chiexample

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/apiguard/apiguard/examples/api"
)

// New returns the API's routes on a chi router.
func New(a *api.API) http.Handler {
	g := a.Guard
	// Each group's limit counts by what api.New says: /api/v1 by client
	// IP, the admin group by client.
	perIP, perAdmin := a.PerIP, a.PerAdmin

	r := chi.NewRouter()
	r.Get("/healthz", a.Health)
	r.Route("/api/v1", func(r chi.Router) {
		// The limit first: requests with a wrong key are counted too.
		r.Use(perIP, g.Authenticate())
		r.With(g.RequireScope(api.ScopeCreate)).Post("/payments", a.CreatePayment)
		r.With(g.RequireScope(api.ScopeRead)).Get("/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
			a.GetPayment(w, r, chi.URLParam(r, "id"))
		})

		// The admin group: its own scope and its own limit for every
		// route in it.
		r.Route("/admin", func(r chi.Router) {
			r.Use(g.RequireScope(api.ScopeAdmin), perAdmin)
			r.Get("/payments", a.CountPayments)
		})
	})
	return r
}
