package apiguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/apiguard/apiguard"
)

// 88Pay's two layers: API key and merchant id for a 60-second token and a
// session id, then the token and the session id on every call.
func ExampleSessions_Issuer() {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: "sk_test_a1b2c3d4e5f6g7h8", Client: apiguard.Client{ID: "MCH-COL-29ZTP4"}}); err != nil {
		log.Fatal(err)
	}

	signing, err := apiguard.GenerateSigningKey("") // or ParseSigningKey(pemBytes, "")
	if err != nil {
		log.Fatal(err)
	}
	ring, err := apiguard.NewKeyRing(signing)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := apiguard.NewSessions("https://api.example.com", ring, apiguard.WithEnvironment(apiguard.Sandbox))
	if err != nil {
		log.Fatal(err)
	}

	credentials := apiguard.MustNew(apiguard.MerchantKey(keys),
		apiguard.WithDialect(apiguard.Pay88()), apiguard.WithEnvironment(apiguard.Sandbox))
	calls := apiguard.MustNew(sessions.SessionScheme(),
		apiguard.WithDialect(apiguard.Pay88()), apiguard.WithEnvironment(apiguard.Sandbox))
	issuer, err := sessions.Issuer(credentials)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /api/auth/token", issuer) // behind the issuance rate limits in production
	mux.Handle("POST /api/transactions/charges", calls.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprintf(w, "charge for %s", c.ID)
	})))
	mux.Handle("GET /.well-known/jwks.json", ring.JWKS())

	r := httptest.NewRequest("POST", "/api/auth/token", nil)
	r.Header.Set("x-api-key", "sk_test_a1b2c3d4e5f6g7h8")
	r.Header.Set("x-merchant-id", "MCH-COL-29ZTP4")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	var resp struct {
		Message string
		Data    struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
			SessionID   string `json:"session_id"`
		}
	}
	json.Unmarshal(w.Body.Bytes(), &resp)
	fmt.Println(w.Code, resp.Message, resp.Data.ExpiresIn, strings.HasPrefix(resp.Data.SessionID, "sess_"))

	for _, sid := range []string{resp.Data.SessionID, ""} {
		r = httptest.NewRequest("POST", "/api/transactions/charges", nil)
		r.Header.Set("Authorization", "Bearer "+resp.Data.AccessToken)
		if sid != "" {
			r.Header.Set("x-session-id", sid)
		}
		w = httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 Token generated successfully 60 true
	// 200 charge for MCH-COL-29ZTP4
	// 400 {"status":"Error","code":400,"message":"Missing required header: x-session-id"}
}

// The client-system API's tokens: a login issues a user, a refresh and an
// access token; a refresh token buys an access token (and the next refresh
// token) once.
func ExampleSessions_Exchange() {
	signing, err := apiguard.GenerateSigningKey("")
	if err != nil {
		log.Fatal(err)
	}
	ring, err := apiguard.NewKeyRing(signing)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := apiguard.NewSessions("https://api.example.com", ring)
	if err != nil {
		log.Fatal(err)
	}

	// In the login handler, once the user's password checks out:
	set, err := sessions.Login(context.Background(), &apiguard.Client{ID: "demo"})
	if err != nil {
		log.Fatal(err)
	}

	// POST /client/auth/access-token with Authorization: Bearer <refresh_token>.
	r := httptest.NewRequest("POST", "/client/auth/access-token", nil)
	r.Header.Set("Authorization", "Bearer "+set.RefreshToken)
	next, err := sessions.Exchange(r, apiguard.RefreshToken)
	fmt.Println(err, next.AccessToken != "", next.RefreshToken != set.RefreshToken)

	// Regular calls take the access token (user-specific ones add the
	// user token in x-user-token: UserScheme).
	access := apiguard.MustNew(sessions.AccessScheme()).Authenticate()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	me := httptest.NewRequest("GET", "/client/me", nil)
	me.Header.Set("Authorization", "Bearer "+next.AccessToken)
	w := httptest.NewRecorder()
	access(ok).ServeHTTP(w, me)
	fmt.Println(w.Code)

	// The spent refresh token again: refused, and the whole session is
	// revoked, the new access token with it.
	_, err = sessions.Exchange(r, apiguard.RefreshToken)
	fmt.Println(errors.Is(err, apiguard.ErrRefreshTokenReused))
	w = httptest.NewRecorder()
	access(ok).ServeHTTP(w, me)
	fmt.Println(w.Code)
	// Output:
	// <nil> true true
	// 200
	// true
	// 401
}
