package ginguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/ginguard"
)

func init() { gin.SetMode(gin.TestMode) }

const key = "sandbox_sk_test_ginguard"

// engine returns a gin engine whose POST /pay is guarded by Bearer keys
// (scope pay), with a wrapper that keeps the body before the handler. The
// handler answers with the client's id and the body it reads from
// c.Request.Body.
func engine(t *testing.T, ran *bool) *gin.Engine {
	t.Helper()
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "client-a", Scopes: []string{"pay"}}}); err != nil {
		t.Fatal(err)
	}
	g, err := apiguard.New(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()))
	if err != nil {
		t.Fatal(err)
	}
	// keep reads (and so keeps) the body before the handler runs.
	keep := g.Check(func(r *http.Request) error {
		_, err := apiguard.ReadBody(r, 1<<10)
		return err
	})
	e := gin.New()
	e.POST("/pay", ginguard.Wrap(g.Authenticate()), ginguard.Wrap(keep), ginguard.Wrap(g.RequireScope("pay")), func(c *gin.Context) {
		*ran = true
		cl, ok := apiguard.ClientFrom(c.Request.Context())
		if !ok {
			c.String(500, "no client")
			return
		}
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			c.String(500, err.Error())
			return
		}
		c.String(200, cl.ID+" "+string(b))
	})
	return e
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		status int
		body   string
		ran    bool
	}{
		{"authenticated: the client and the kept body reach the handler", "Bearer " + key, 200, `client-a {"amount":10}`, true},
		{"refused: the dialect's body, the chain aborted", "Bearer nope", 401, `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`, false},
		{"no key", "", 401, `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ran bool
			e := engine(t, &ran)
			r := httptest.NewRequest("POST", "/pay", strings.NewReader(`{"amount":10}`))
			r.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, r)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Errorf("got %d %s, want %d %s", w.Code, w.Body, tc.status, tc.body)
			}
			if ran != tc.ran {
				t.Errorf("handler ran: %v, want %v", ran, tc.ran)
			}
		})
	}
}

func TestWrapNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Wrap(nil) did not panic")
		}
	}()
	ginguard.Wrap(nil)
}
