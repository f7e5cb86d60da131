package apiguard

import (
	"net/http/httptest"
	"testing"
)

func TestClientKeyQuery(t *testing.T) {
	g := MustNew(ClientKey(midtransStore(t)), WithDialect(Midtrans()))
	h := g.Authenticate()(okHandler)
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"client key", "client_key=" + pubKey + "&card_number=4811111111111114", 200},
		{"server key refused", "client_key=" + serverKey, 401},
		{"none", "card_number=4811111111111114", 401},
		{"empty", "client_key=", 401},
		{"twice", "client_key=" + pubKey + "&client_key=" + pubKey, 401},
		{"bad escape", "client_key=" + pubKey + "&x=%zz", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/token?"+tc.query, nil)
			r.Header.Set("Authorization", basic(serverKey+":")) // ignored here
			w := serve(h, r)
			if tc.status == 200 {
				if w.Code != 200 || w.Header().Get("X-Client") != "M-demo" {
					t.Fatalf("got %d %s", w.Code, w.Body)
				}
				return
			}
			wantBody(t, w, 401, midDenied)
		})
	}
}

// FuzzClientKeyQuery: no panic; only the publishable key is admitted.
func FuzzClientKeyQuery(f *testing.F) {
	for _, s := range []string{"client_key=" + pubKey, "client_key=" + serverKey, "client_key=%", "a=b;c"} {
		f.Add(s)
	}
	g := MustNew(ClientKey(midtransStore(f)))
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = q
		c, err := g.Identify(r)
		if err == nil && c.KeyID != "client" {
			t.Fatalf("%q admitted as %+v", q, c)
		}
	})
}
