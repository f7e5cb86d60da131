// Package ginguard runs apiguard's wrappers in gin
// (github.com/gin-gonic/gin).
//
// apiguard's wrappers have the standard shape, func(http.Handler)
// http.Handler, which gin cannot chain by itself. Wrap adapts one to a
// gin.HandlerFunc:
//
//	g, err := apiguard.New(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()))
//	if err != nil {
//		return err
//	}
//	e := gin.New()
//	v1 := e.Group("/api/v1", ginguard.Wrap(g.Authenticate()))
//	v1.POST("/payments", ginguard.Wrap(g.RequireScope("payment:create")), createPayment)
//
// It lives in a module of its own, so that the apiguard module does not
// depend on gin.
package ginguard

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard"
)

// Wrap returns a gin.HandlerFunc that runs mw. The rest of gin's chain
// runs inside mw, on the request mw hands on, which becomes c.Request: so
// apiguard.ClientFrom(c.Request.Context()) gives the authenticated client
// in later handlers, and the body apiguard kept (apiguard.ReadBody) is
// their c.Request.Body. When mw answers by itself (a refusal, rendered in
// its Guard's dialect), Wrap aborts the chain.
//
// A nil mw panics, at the call of Wrap.
func Wrap(mw apiguard.Middleware) gin.HandlerFunc {
	if mw == nil {
		panic("ginguard: Wrap of a nil Middleware")
	}
	return func(c *gin.Context) {
		passed := false
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}
