package apiguard

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

const (
	serverKey = "SB-Mid-server-demo123456"
	midDenied = `{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`
)

func midtransStore(t testing.TB) *MemoryKeyStore {
	return mustStore(t,
		KeySpec{Key: serverKey, Client: Client{ID: "M-demo", KeyID: "server"}},
		KeySpec{Key: pubKey, Client: Client{ID: "M-demo", KeyID: "client", Publishable: true}},
	)
}

func basic(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

// TestMidtransSeed covers seed 002: Basic with the server key as username
// and an empty password.
func TestMidtransSeed(t *testing.T) {
	// The seed's own example encodes as documented.
	if got := basic("SB-Mid-server-abc123cde456:"); got != "Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6" {
		t.Fatalf("seed example encodes as %q", got)
	}
	g := MustNew(Basic(midtransStore(t)), WithDialect(Midtrans()), WithEnvironment(Sandbox))
	h := g.Authenticate()(okHandler)
	for _, tc := range []struct {
		name   string
		auth   []string
		status int
	}{
		{"server key", []string{basic(serverKey + ":")}, 200},
		{"scheme any case", []string{"basic " + base64.StdEncoding.EncodeToString([]byte(serverKey+":"))}, 200},
		{"no header", nil, 401},
		{"password", []string{basic(serverKey + ":secret")}, 401},
		{"no colon", []string{basic(serverKey)}, 401},
		{"empty user", []string{basic(":")}, 401},
		{"client key", []string{basic(pubKey + ":")}, 401},
		{"unknown", []string{basic("SB-Mid-server-other:")}, 401},
		{"bad base64", []string{"Basic !!!notbase64"}, 401},
		{"unpadded", []string{"Basic " + base64.RawStdEncoding.EncodeToString([]byte(serverKey+":"))}, 401},
		{"bearer", []string{"Bearer " + serverKey}, 401},
		{"empty basic", []string{"Basic"}, 401},
		{"two headers", []string{basic(serverKey + ":"), basic(serverKey + ":")}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/snap/v1/transactions", nil)
			for _, v := range tc.auth {
				r.Header.Add("Authorization", v)
			}
			w := serve(h, r)
			if tc.status == 200 {
				if w.Code != 200 || w.Header().Get("X-Client") != "M-demo" {
					t.Fatalf("got %d %s", w.Code, w.Body)
				}
				return
			}
			wantBody(t, w, 401, midDenied)
			if w.Header().Get("WWW-Authenticate") != `Basic realm="api"` {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// FuzzBasicHeader: no panic, 401 or the one server key.
func FuzzBasicHeader(f *testing.F) {
	for _, s := range []string{basic(serverKey + ":"), basic(pubKey + ":"), basic(":"), "Basic", "Basic ====", basic(serverKey + ":x")} {
		f.Add(s)
	}
	g := MustNew(Basic(midtransStore(f)))
	f.Fuzz(func(t *testing.T, auth string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{auth}
		c, err := g.Identify(r)
		if err != nil {
			if e := NewError(err); e.Status != http.StatusUnauthorized || c != nil {
				t.Fatalf("%q: %v", auth, err)
			}
			return
		}
		if c.KeyID != "server" {
			t.Fatalf("%q admitted as %+v", auth, c)
		}
		enc, _ := cutScheme(auth, "Basic")
		dec, _ := base64.StdEncoding.DecodeString(enc)
		if string(dec) != serverKey+":" {
			t.Fatalf("%q admitted; decodes to %q", auth, dec)
		}
	})
}
