package stdlibexample_test

import (
	"testing"

	"github.com/apiguard/apiguard/examples/internal/routertest"
	"github.com/apiguard/apiguard/examples/stdlibexample"
)

// TestRouter proves that through the standard library's ServeMux every refusal has its documented
// body, the authenticated client reaches the handlers, and each route
// group's rate limit holds to the request.
func TestRouter(t *testing.T) { routertest.Run(t, stdlibexample.New) }
