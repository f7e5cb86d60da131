// Package ginexample guards the example API with gin, through
// ginguard.Wrap, the adapter from apiguard's wrappers to gin.HandlerFuncs.
package ginexample

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard/examples/api"
	"github.com/apiguard/apiguard/ginguard"
)

// New returns the API's routes on a gin engine.
func New(a *api.API) http.Handler {
	g := a.Guard
	// Each group's limit counts by what api.New says: /api/v1 by client
	// IP, the admin group by client.
	perIP, perAdmin := a.PerIP, a.PerAdmin

	e := gin.New()
	e.GET("/healthz", gin.WrapF(a.Health))

	// The limit first: requests with a wrong key are counted too.
	v1 := e.Group("/api/v1", ginguard.Wrap(perIP), ginguard.Wrap(g.Authenticate()))
	v1.POST("/payments", ginguard.Wrap(g.RequireScope(api.ScopeCreate)), gin.WrapF(a.CreatePayment))
	v1.GET("/payments/:id", ginguard.Wrap(g.RequireScope(api.ScopeRead)), func(c *gin.Context) {
		// A native gin handler: the client is in c.Request's context,
		// apiguard.ClientFrom(c.Request.Context()).
		a.GetPayment(c.Writer, c.Request, c.Param("id"))
	})

	// The admin group: its own scope and its own limit for every route in
	// it.
	admin := v1.Group("/admin", ginguard.Wrap(g.RequireScope(api.ScopeAdmin)), ginguard.Wrap(perAdmin))
	admin.GET("/payments", gin.WrapF(a.CountPayments))
	return e
}
