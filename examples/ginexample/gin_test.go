package ginexample_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard/examples/ginexample"
	"github.com/apiguard/apiguard/examples/internal/routertest"
)

// TestRouter proves that through gin every refusal has its documented
// body and the authenticated client reaches the handlers.
func TestRouter(t *testing.T) { routertest.Run(t, ginexample.New) }

func init() { gin.SetMode(gin.TestMode) }
