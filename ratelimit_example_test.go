package apiguard_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/apiguard/apiguard"
)

// 88Pay's token endpoint: 10 tokens per minute and 100 per hour per
// merchant, then 429 "Rate limit exceeded" with Retry-After.
func ExampleGuard_RateLimit() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "sk_test_a1b2c3d4e5f6g7h8", Client: apiguard.Client{ID: "MCH-COL-29ZTP4"}}); err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys, "X-Api-Key"), apiguard.WithDialect(apiguard.Pay88()))

	perMerchant, err := apiguard.NewMemoryLimiter([]apiguard.Window{apiguard.PerMinute(10), apiguard.PerHour(100)})
	if err != nil {
		log.Fatal(err)
	}
	token := g.RateLimit(perMerchant, apiguard.ByClient())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"Success"}`)
	}))

	for i := 1; i <= 11; i++ {
		r := httptest.NewRequest("POST", "/api/auth/token", nil)
		r.Header.Set("X-Api-Key", "sk_test_a1b2c3d4e5f6g7h8")
		w := httptest.NewRecorder()
		token.ServeHTTP(w, r)
		if i == 1 || i >= 10 {
			fmt.Println(i, w.Code, w.Header().Get("RateLimit-Remaining"), w.Header().Get("Retry-After"), w.Body)
		}
	}
	// Output:
	// 1 200 9  {"status":"Success"}
	// 10 200 0  {"status":"Success"}
	// 11 429 0 6 {"status":"Error","code":429,"message":"Rate limit exceeded"}
}

// One limiter for several routes, each client IP counted on each route
// apart. (The reseller's order route adds a second limit, 30 per minute per
// user, with a second RateLimit counting ByClient.)
func ExampleByAll() {
	g := apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Reseller()))
	perIP, err := apiguard.NewMemoryLimiter([]apiguard.Window{apiguard.PerMinute(100)})
	if err != nil {
		log.Fatal(err)
	}
	perIPAndRoute := g.RateLimit(perIP, apiguard.ByAll(apiguard.ByIP(), apiguard.ByRoute()))

	mux := http.NewServeMux()
	mux.Handle("POST /order", perIPAndRoute(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "/order", nil))
	fmt.Println(w.Code, w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"))
	// Output:
	// 200 100 99
}
