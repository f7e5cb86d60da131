// Package ginexample guards the example API with gin, through Wrap, an
// adapter from the standard middleware shape to a gin.HandlerFunc.
package ginexample

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/examples/api"
)

// Wrap adapts a wrapper of the standard shape to gin. The rest of gin's
// chain runs inside the wrapper, on the request it passes on (so
// c.Request's context holds the authenticated client); a wrapper that
// answers by itself (a refusal) aborts the chain.
func Wrap(mw apiguard.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

// New returns the API's routes on a gin engine.
func New(a *api.API) http.Handler {
	g := a.Guard
	// Each group's limit counts by what api.New says: /api/v1 by client
	// IP, the admin group by client.
	perIP, perAdmin := a.PerIP, a.PerAdmin

	e := gin.New()
	e.GET("/healthz", gin.WrapF(a.Health))

	// The limit first: requests with a wrong key are counted too.
	v1 := e.Group("/api/v1", Wrap(perIP), Wrap(g.Authenticate()))
	v1.POST("/payments", Wrap(g.RequireScope(api.ScopeCreate)), gin.WrapF(a.CreatePayment))
	v1.GET("/payments/:id", Wrap(g.RequireScope(api.ScopeRead)), func(c *gin.Context) {
		// A native gin handler: the client is in c.Request's context,
		// apiguard.ClientFrom(c.Request.Context()).
		a.GetPayment(c.Writer, c.Request, c.Param("id"))
	})

	// The admin group: its own scope and its own limit for every route in
	// it.
	admin := v1.Group("/admin", Wrap(g.RequireScope(api.ScopeAdmin)), Wrap(perAdmin))
	admin.GET("/payments", gin.WrapF(a.CountPayments))
	return e
}
