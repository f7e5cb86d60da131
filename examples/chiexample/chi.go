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
	r := chi.NewRouter()
	r.Get("/healthz", a.Health)
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(g.Authenticate())
		r.With(g.RequireScope(api.ScopeCreate)).Post("/payments", a.CreatePayment)
		r.With(g.RequireScope(api.ScopeRead)).Get("/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
			a.GetPayment(w, r, chi.URLParam(r, "id"))
		})

		// The admin group: its own scope for every route in it.
		r.Route("/admin", func(r chi.Router) {
			r.Use(g.RequireScope(api.ScopeAdmin))
			// LIMIT(issue 5): the admin group's own rate limit goes here
			// (r.Use(...)), once the rate limiter is merged.
			r.Get("/payments", a.CountPayments)
		})
	})
	return r
}
