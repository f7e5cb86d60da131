// Package echoexample guards the example API with echo, through its own
// adapter for the standard middleware shape, echo.WrapMiddleware.
package echoexample

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/apiguard/apiguard/examples/api"
)

// New returns the API's routes on an echo server.
func New(a *api.API) http.Handler {
	g := a.Guard
	// Each group's limit counts by what api.New says: /api/v1 by client
	// IP, the admin group by client.
	perIP, perAdmin := a.PerIP, a.PerAdmin

	e := echo.New()
	e.HideBanner = true
	e.GET("/healthz", echo.WrapHandler(http.HandlerFunc(a.Health)))

	// The limit first: requests with a wrong key are counted too.
	v1 := e.Group("/api/v1", echo.WrapMiddleware(perIP), echo.WrapMiddleware(g.Authenticate()))
	v1.POST("/payments", echo.WrapHandler(http.HandlerFunc(a.CreatePayment)), echo.WrapMiddleware(g.RequireScope(api.ScopeCreate)))
	v1.GET("/payments/:id", func(c echo.Context) error {
		// A native echo handler: the client is in c.Request()'s context,
		// apiguard.ClientFrom(c.Request().Context()).
		a.GetPayment(c.Response(), c.Request(), c.Param("id"))
		return nil
	}, echo.WrapMiddleware(g.RequireScope(api.ScopeRead)))

	// The admin group: its own scope and its own limit for every route in
	// it.
	admin := v1.Group("/admin", echo.WrapMiddleware(g.RequireScope(api.ScopeAdmin)), echo.WrapMiddleware(perAdmin))
	admin.GET("/payments", echo.WrapHandler(http.HandlerFunc(a.CountPayments)))
	return e
}
