package ginexample_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard/examples/ginexample"
	"github.com/apiguard/apiguard/examples/internal/routertest"
)

// TestRouter proves that through gin every refusal has its documented
// body, the authenticated client reaches the handlers, and each route
// group's rate limit holds to the request.
func TestRouter(t *testing.T) { routertest.Run(t, ginexample.New) }

func init() { gin.SetMode(gin.TestMode) }
