package chiexample_test

import (
	"testing"

	"github.com/apiguard/apiguard/examples/chiexample"
	"github.com/apiguard/apiguard/examples/internal/routertest"
)

// TestRouter proves that through chi every refusal has its documented
// body and the authenticated client reaches the handlers.
func TestRouter(t *testing.T) { routertest.Run(t, chiexample.New) }
