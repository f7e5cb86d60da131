package apiguard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	keyA    = "sandbox_sk_test_demo_clientA_full"
	keyB    = "sandbox_sk_test_demo_clientB_read"
	keyLive = "live_sk_demo_clientA"
	pubKey  = "SB-Mid-client-demo123456"
)

func mockPayStore(t testing.TB) *MemoryKeyStore {
	return mustStore(t,
		KeySpec{Key: keyA, Client: Client{ID: "client-a", KeyID: "ka", Scopes: []string{"payment:create", "payment:read"}}},
		KeySpec{Key: keyB, Client: Client{ID: "client-b", KeyID: "kb", Scopes: []string{"payment:read"}}},
		KeySpec{Key: keyLive, Client: Client{ID: "client-a", KeyID: "kl", Scopes: []string{"payment:create", "payment:read"}}},
		KeySpec{Key: pubKey, Client: Client{ID: "client-a", KeyID: "kp", Publishable: true}},
	)
}

const (
	mockUnauthorized = `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`
	mockForbidden    = `{"success":false,"error":{"code":"FORBIDDEN","message":"Insufficient permissions for this operation"}}`
)

// TestMockPaySeed reproduces every documented error of seed 000.
func TestMockPaySeed(t *testing.T) {
	g := MustNew(Bearer(mockPayStore(t)), WithDialect(MockPay()), WithEnvironment(Sandbox))
	create := Chain(g.Authenticate(), g.RequireScope("payment:create"))(okHandler)
	for _, tc := range []struct {
		name   string
		auth   []string
		status int
		body   string
		client string
	}{
		{"full key", []string{"Bearer " + keyA}, 200, "", "client-a"},
		{"scheme any case", []string{"bEaReR " + keyA}, 200, "", "client-a"},
		{"several spaces", []string{"Bearer   " + keyA}, 200, "", "client-a"},
		{"no header", nil, 401, mockUnauthorized, ""},
		{"empty bearer", []string{"Bearer"}, 401, mockUnauthorized, ""},
		{"unknown key", []string{"Bearer sandbox_sk_test_xxxxxxxxxx"}, 401, mockUnauthorized, ""},
		{"key with a suffix", []string{"Bearer " + keyA + "x"}, 401, mockUnauthorized, ""},
		{"key prefix", []string{"Bearer " + keyA[:len(keyA)-1]}, 401, mockUnauthorized, ""},
		{"live key in sandbox", []string{"Bearer " + keyLive}, 401, mockUnauthorized, ""},
		{"publishable key", []string{"Bearer " + pubKey}, 401, mockUnauthorized, ""},
		{"basic scheme", []string{"Basic " + keyA}, 401, mockUnauthorized, ""},
		{"no space", []string{"Bearer" + keyA}, 401, mockUnauthorized, ""},
		{"two headers", []string{"Bearer " + keyA, "Bearer " + keyA}, 401, mockUnauthorized, ""},
		{"two headers differ", []string{"Bearer " + keyB, "Bearer " + keyA}, 401, mockUnauthorized, ""},
		{"tab inside", []string{"Bearer " + keyA + "\tx"}, 401, mockUnauthorized, ""},
		{"huge", []string{"Bearer " + strings.Repeat("a", 5000)}, 401, mockUnauthorized, ""},
		{"lacks scope", []string{"Bearer " + keyB}, 403, mockForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/payment/create", nil)
			for _, v := range tc.auth {
				r.Header.Add("Authorization", v)
			}
			w := serve(create, r)
			if tc.status == 200 {
				if w.Code != 200 || w.Header().Get("X-Client") != tc.client {
					t.Fatalf("got %d client %q: %s", w.Code, w.Header().Get("X-Client"), w.Body)
				}
				return
			}
			wantBody(t, w, tc.status, tc.body)
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(w.Body.String(), "sk_") {
				t.Errorf("key echoed: %s", w.Body)
			}
		})
	}
}

func TestBearerLiveGuardRefusesSandbox(t *testing.T) {
	g := MustNew(Bearer(mockPayStore(t)), WithEnvironment(Live))
	for key, want := range map[string]int{keyLive: 200, keyA: 401} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		if w := serve(g.Authenticate()(okHandler), r); w.Code != want {
			t.Errorf("%s: status %d, want %d", key, w.Code, want)
		}
	}
}

func TestBearerSources(t *testing.T) {
	g := MustNew(Bearer(mockPayStore(t), "Authorization", "x-api-key"))
	for _, tc := range []struct {
		name       string
		auth, xkey []string
		status     int
	}{
		{"authorization", []string{"Bearer " + keyA}, nil, 200},
		{"x-api-key", nil, []string{keyA}, 200},
		{"both equal", []string{"Bearer " + keyA}, []string{keyA}, 200},
		{"both differ", []string{"Bearer " + keyA}, []string{keyB}, 401},
		{"two x-api-key", nil, []string{keyA, keyA}, 401},
		{"none", nil, nil, 401},
		{"empty x-api-key", nil, []string{""}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/?api_key="+keyA, nil) // never read from the URL
			for _, v := range tc.auth {
				r.Header.Add("Authorization", v)
			}
			for _, v := range tc.xkey {
				r.Header.Add("X-API-Key", v)
			}
			if w := serve(g.Authenticate()(okHandler), r); w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
		})
	}
	// A key in the URL alone is not a key.
	g2 := MustNew(Bearer(mockPayStore(t)))
	if _, err := g2.Identify(httptest.NewRequest("GET", "/?api_key="+keyA+"&key="+keyA, nil)); !errors.Is(err, ErrMissingKey) {
		t.Errorf("URL key: %v", err)
	}
}

// failingStore is a KeyStore whose backend is down.
type failingStore struct{}

func (failingStore) Lookup(context.Context, string) (*Client, error) {
	return nil, errors.New("dial tcp 10.0.0.1:5432: connection refused")
}
func (failingStore) Secrets(context.Context, string) ([]Secret, error) {
	return nil, errors.New("down")
}

func TestBearerStoreFailureIs503(t *testing.T) {
	g := MustNew(Bearer(failingStore{}), WithDialect(MockPay()))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+keyA)
	w := serve(g.Authenticate()(okHandler), r)
	wantBody(t, w, 503, `{"success":false,"error":{"code":"SERVICE_UNAVAILABLE","message":"Service unavailable"}}`)
	if strings.Contains(w.Body.String(), "10.0.0.1") {
		t.Error("backend error leaked")
	}
	_, err := g.Identify(r)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidKey) {
		t.Errorf("err = %v", err)
	}
}

// FuzzBearerHeader feeds arbitrary Authorization and X-API-Key values. The
// invariants: no panic; a request is admitted only with exactly the stored
// key; any admission names its owner.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []string{"Bearer " + keyA, "bearer  " + keyB, "Bearer", "Basic xyz", "", "Bearer \x00", "Bearer " + keyA + " "} {
		f.Add(s, "")
		f.Add("", s)
	}
	store := mockPayStore(f)
	g := MustNew(Bearer(store, "Authorization", "X-API-Key"), WithEnvironment(Sandbox))
	f.Fuzz(func(t *testing.T, auth, xkey string) {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if xkey != "" {
			r.Header["X-Api-Key"] = []string{xkey}
		}
		c, err := g.Identify(r)
		if err != nil {
			if c != nil {
				t.Fatal("client with an error")
			}
			if e := NewError(err); e.Status != http.StatusUnauthorized {
				t.Fatalf("status %d for %q %q", e.Status, auth, xkey)
			}
			return
		}
		k, _ := cutScheme(auth, "Bearer")
		if k == "" {
			k = xkey
		}
		want := map[string]string{keyA: "client-a", keyB: "client-b"}[k]
		if c.ID != want {
			t.Fatalf("admitted %q as %q", k, c.ID)
		}
	})
}

// TestBearerHeaderNames: Bearer takes the key from headers whose names are
// RFC 9110 tokens, and New refuses any other name.
func TestBearerHeaderNames(t *testing.T) {
	keys := mockPayStore(t)
	for _, h := range []string{"", "X API Key", "X-API-Key:", "X(Key)", "X-Key\t", "Ünï"} {
		if _, err := New(Bearer(keys, h)); err == nil {
			t.Errorf("%q: no error", h)
		}
	}
	if _, err := New(Bearer(keys, "x-api-key", "X_Key.v2")); err != nil {
		t.Error(err)
	}
	if _, err := New(Bearer(nil)); err == nil {
		t.Error("nil KeyStore: no error")
	}
}
