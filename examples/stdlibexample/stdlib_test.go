package stdlibexample_test

import (
	"testing"

	"github.com/apiguard/apiguard/examples/internal/routertest"
	"github.com/apiguard/apiguard/examples/stdlibexample"
)

// TestRouter proves that through the standard library's ServeMux every refusal has its documented
// body and the authenticated client reaches the handlers.
func TestRouter(t *testing.T) { routertest.Run(t, stdlibexample.New) }
