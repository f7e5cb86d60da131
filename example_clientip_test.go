package apiguard_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/apiguard/apiguard"
)

// A whitelist behind a load balancer: the client IP is the rightmost
// X-Forwarded-For entry that is not a trusted proxy, so a forged leftmost
// entry does not help.
func ExampleGuard_IPAllow() {
	allow, err := apiguard.ParsePrefixes("203.0.113.7", "2001:db8::/32")
	if err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Reseller()),
		apiguard.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	h := g.IPAllow(allow...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))

	for _, xff := range []string{"198.51.100.1, 203.0.113.7", "203.0.113.7, 198.51.100.1"} {
		r := httptest.NewRequest("GET", "/products", nil)
		r.RemoteAddr = "10.0.0.2:443" // the load balancer
		r.Header.Set("X-Forwarded-For", xff)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 ok
	// 403 {"status":"error","message":"IP belum di whitelist","code":403}
}

// Unique request ids per client system (the client-system API): the second
// use of an id is refused with 409.
func ExampleGuard_RequestID() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "app-public-key", Client: apiguard.Client{ID: "system-1", Publishable: true}}); err != nil {
		log.Fatal(err)
	}
	ids, err := apiguard.NewMemoryReplayStore()
	if err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.AppKey(keys))
	h := apiguard.Chain(g.Authenticate(), g.RequestID(ids, 0))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))

	for range 2 {
		r := httptest.NewRequest("POST", "/external/v1/orders", nil)
		r.Header.Set("x-app-key", "app-public-key")
		r.Header.Set("x-request-id", "7d4f0a52-3c1e-4d7e-9b8a-2f1c0e6d5a11")
		r.Header.Set("x-language", "en")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 ok
	// 409 {"type":"about:blank","title":"Conflict","status":409,"detail":"x-request-id has already been used","code":"duplicate_request_id"}
}
