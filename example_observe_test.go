package apiguard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/apiguard/apiguard"
)

// An observer sees every decision. The two refusals below look alike to
// the caller (401, "invalid_key"); their causes tell them apart.
func ExampleWithObserver() {
	keys, _ := apiguard.NewMemoryKeyStore()
	keys.Add(apiguard.KeySpec{Key: "sandbox_sk_test_clientA", Client: apiguard.Client{ID: "client-a", KeyID: "key-1"}})
	keys.Add(apiguard.KeySpec{Key: "live_sk_clientA", Client: apiguard.Client{ID: "client-a", KeyID: "key-2"}})
	observe := func(d apiguard.Decision) {
		if d.Allowed {
			fmt.Println(d.Wrapper, "allowed", d.Client.ID, d.Client.KeyID)
			return
		}
		fmt.Println(d.Wrapper, "refused", d.Err.Status, d.Err.Code, d.Cause)
	}
	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithEnvironment(apiguard.Sandbox), apiguard.WithObserver(observe))
	h := g.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for _, key := range []string{"sandbox_sk_test_clientA", "sandbox_sk_test_guess", "live_sk_clientA"} {
		r := httptest.NewRequest("GET", "/v1/charges", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// authenticate allowed client-a key-1
	// authenticate refused 401 invalid_key unknown_key
	// authenticate refused 401 invalid_key wrong_environment
}
