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
	e := echo.New()
	e.HideBanner = true
	e.GET("/healthz", echo.WrapHandler(http.HandlerFunc(a.Health)))

	v1 := e.Group("/api/v1", echo.WrapMiddleware(g.Authenticate()))
	v1.POST("/payments", echo.WrapHandler(http.HandlerFunc(a.CreatePayment)), echo.WrapMiddleware(g.RequireScope(api.ScopeCreate)))
	v1.GET("/payments/:id", func(c echo.Context) error {
		// A native echo handler: the client is in c.Request()'s context,
		// apiguard.ClientFrom(c.Request().Context()).
		a.GetPayment(c.Response(), c.Request(), c.Param("id"))
		return nil
	}, echo.WrapMiddleware(g.RequireScope(api.ScopeRead)))

	// The admin group: its own scope for every route in it.
	admin := v1.Group("/admin", echo.WrapMiddleware(g.RequireScope(api.ScopeAdmin)))
	// LIMIT(issue 5): the admin group's own rate limit goes here
	// (admin.Use(echo.WrapMiddleware(...))), once the rate limiter is merged.
	admin.GET("/payments", echo.WrapHandler(http.HandlerFunc(a.CountPayments)))
	return e
}
