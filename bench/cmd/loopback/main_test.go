package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutes: the bare routes answer anyone, bare-headers with the
// rate-limit headers of a guarded response's widths; the guarded one
// answers the key with the rate-limit headers, and refuses a request
// without it.
func TestRoutes(t *testing.T) {
	h, err := handler(DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := get("/bare", ""); w.Code != http.StatusOK || w.Body.String() != `{"status":"success"}` {
		t.Errorf("/bare: %d %q", w.Code, w.Body)
	}
	w := get("/guarded", "Bearer "+DefaultKey)
	if w.Code != http.StatusOK || w.Body.String() != `{"status":"success"}` {
		t.Errorf("/guarded with the key: %d %q", w.Code, w.Body)
	}
	bh := get("/bare-headers", "")
	if bh.Code != http.StatusOK || bh.Body.String() != `{"status":"success"}` {
		t.Errorf("/bare-headers: %d %q", bh.Code, bh.Body)
	}
	for _, name := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		g, b := w.Header().Get(name), bh.Header().Get(name)
		if g == "" || len(g) != len(b) {
			t.Errorf("%s: /guarded %q, /bare-headers %q; want values of one width", name, g, b)
		}
	}
	if w := get("/guarded", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("/guarded without a key: %d, want 401", w.Code)
	}
	if w := get("/guarded", "Bearer sk_test_other"); w.Code != http.StatusUnauthorized {
		t.Errorf("/guarded with another key: %d, want 401", w.Code)
	}
}
