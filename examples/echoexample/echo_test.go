package echoexample_test

import (
	"testing"

	"github.com/apiguard/apiguard/examples/echoexample"
	"github.com/apiguard/apiguard/examples/internal/routertest"
)

// TestRouter proves that through echo every refusal has its documented
// body, the authenticated client reaches the handlers, and each route
// group's rate limit holds to the request.
func TestRouter(t *testing.T) { routertest.Run(t, echoexample.New) }
