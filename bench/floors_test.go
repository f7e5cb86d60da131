package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/golang-jwt/jwt/v5"
)

// serve serves r to h and returns the response and whether the request
// reached the handler.
func serve(h http.Handler, r *http.Request) (*httptest.ResponseRecorder, bool) {
	r, p := WithProbe(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, p.Reached() == 1
}

// clientOf is a handler that records the client a floor handed it.
func clientOf(got *any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = r.Context().Value(clientKey{})
		OK.ServeHTTP(w, r)
	})
}

func TestBearerFloor(t *testing.T) {
	var got any
	h := BearerFloor(map[string]string{bearerKey(0): "client-0", bearerKey(1): "client-1"}, clientOf(&got))
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"key", "Bearer " + bearerKey(1), http.StatusOK},
		{"unknown-key", "Bearer " + bearerKey(2), http.StatusUnauthorized},
		{"no-key", "", http.StatusUnauthorized},
		{"other-scheme", "Basic " + bearerKey(1), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest("GET", "/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w, reached := serve(h, r)
			if w.Code != tc.want || reached != (tc.want == http.StatusOK) {
				t.Fatalf("status %d, reached %v; want %d", w.Code, reached, tc.want)
			}
			if c, _ := got.(*FloorClient); tc.want == http.StatusOK && (c == nil || c.ID != "client-1") {
				t.Errorf("the handler got client %v, want client-1", got)
			}
		})
	}
}

// TestRateFloorHeaders: the floor writes the headers apiguard's RateLimit
// writes, with the values of its bucket, and refuses past the burst.
func TestRateFloorHeaders(t *testing.T) {
	mem, err := apiguard.NewMemoryLimiter([]apiguard.Window{{Limit: 5, Period: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ag, _ := serve(apiguard.MustNew(nil).RateLimit(mem, apiguard.ByIP())(OK), rateRequest())
	floor := RateFloor(1, 5, true, OK)
	w, reached := serve(floor, rateRequest())
	if w.Code != http.StatusOK || !reached {
		t.Fatalf("the first request: status %d, reached %v", w.Code, reached)
	}
	if want, got := slices.Sorted(maps.Keys(ag.Header())), slices.Sorted(maps.Keys(w.Header())); !slices.Equal(got, want) {
		t.Errorf("the floor writes the headers %q, apiguard %q", got, want)
	}
	for name, want := range map[string]string{"RateLimit-Limit": "5", "RateLimit-Remaining": "4", "RateLimit-Reset": "1"} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for range 4 {
		serve(floor, rateRequest())
	}
	if w, reached := serve(floor, rateRequest()); w.Code != http.StatusTooManyRequests || reached {
		t.Errorf("past the burst: status %d, reached %v; want 429, not reached", w.Code, reached)
	}
	other := rateRequest()
	other.RemoteAddr = rateAddr(1)
	if w, _ := serve(floor, other); w.Code != http.StatusOK {
		t.Errorf("another client: status %d, want 200", w.Code)
	}
	if w, _ := serve(RateFloor(1, 5, false, OK), rateRequest()); len(w.Header()) != 0 {
		t.Errorf("the floor without headers writes %v", w.Header())
	}
}

func TestHashFloor(t *testing.T) {
	for name, floor := range map[string]func(map[string]string, string, http.Handler) http.Handler{
		"floor": HashFloor, "floor-strict": HashFloorStrict,
	} {
		t.Run(name, func(t *testing.T) { testHashFloor(t, floor) })
	}
}

func testHashFloor(t *testing.T, floor func(map[string]string, string, http.Handler) http.Handler) {
	body := orderBody(300)
	var got []byte
	h := floor(map[string]string{resellerKey: resellerID}, resellerPrice, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		OK.ServeHTTP(w, r)
	}))
	r, _ := orderRequest(body)
	if w, reached := serve(h, r); w.Code != http.StatusOK || !reached || string(got) != string(body) {
		t.Fatalf("a signed order: status %d, reached %v, body whole %v", w.Code, reached, string(got) == string(body))
	}
	for name, change := range map[string]func(r *http.Request){
		"wrong-digest": func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+strings.Repeat("0", 64))
		},
		"unknown-key": func(r *http.Request) { r.Header.Set("X-API-Key", "rsl_live_other") },
		"other-ref": func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "REF_1", "REF_2", 1)))
		},
		"short-digest": func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")[:40]) },
		"missing-auth": func(r *http.Request) { r.Header.Del("Authorization") },
		"empty-key":    func(r *http.Request) { r.Header.Set("X-API-Key", "") },
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := orderRequest(body)
			change(r)
			if w, reached := serve(h, r); w.Code != http.StatusUnauthorized || reached {
				t.Errorf("status %d, reached %v; want 401, not reached", w.Code, reached)
			}
		})
	}
}

// TestStrictRefID: the strict floor's reader finds the top-level ref_id of
// a JSON object however the body is laid out, and refuses what is not one
// object, a ref_id that is not a string or comes twice, and control bytes
// in strings.
func TestStrictRefID(t *testing.T) {
	for body, want := range map[string]string{
		`{"ref_id":"A"}`: "A",
		" {\n\"a\":1.5e3,\"ref_id\" : \"A\",\"b\":[1,{\"c\":null},[]],\"d\":true,\"e\":{}}\t": "A",
		`{"note":"\"ref_id\":\"X\"","ref_id":"A"}`:                                            "A",
		`{"a":"\\","ref_id":"A"}`:                                                             "A",
		`{"a":"x\\\"y","ref_id":"A"}`:                                                         "A",
		`{"ref_id":"A\"B"}`:                                                                   `A\"B`,
	} {
		if got, ok := strictRefID([]byte(body)); !ok || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", body, got, ok, want)
		}
	}
	for _, body := range []string{
		`{"ref_id":"A","ref_id":"B"}`, `{"ref_id":"A"`, `{"ref_id":"A"}x`, `{"ref_id":1}`, `{}`, `[]`, ``,
		`{"a":"` + "\x01" + `","ref_id":"A"}`, `{"a":[1,2,"ref_id":"A"}`, `{"a":tru,"ref_id":"A"}`,
		`{"a":"b" "ref_id":"A"}`, `{"ref_id":"A",}`, `{"a":{"ref_id":"A"}}`, `{"ref_id":"A\"}`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600),
	} {
		if got, ok := strictRefID([]byte(body)); ok {
			t.Errorf("%s: %q, want refused", body, got)
		}
	}
}

func TestSessionFloor(t *testing.T) {
	k := mustSessionKeys(t)
	h := SessionFloor(k.pub, sessionName, OK)
	set, err := k.sessions.Issue(&apiguard.Client{ID: "merchant-1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key *ecdsa.PrivateKey, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"apiguard-token", set.AccessToken, http.StatusOK},
		{"signed", sign(k.priv, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), http.StatusOK},
		{"expired", sign(k.priv, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}), http.StatusUnauthorized},
		{"no-exp", sign(k.priv, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Unix()}), http.StatusUnauthorized},
		{"issued-later", sign(k.priv, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}), http.StatusUnauthorized},
		{"other-key", sign(other, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), http.StatusUnauthorized},
		{"hs256", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": sessionName, "aud": sessionName, "sub": "a", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}).SignedString([]byte("k"))
			return s
		}(), http.StatusUnauthorized},
		{"other-issuer", sign(k.priv, jwt.MapClaims{"iss": "other", "aud": sessionName, "sub": "a", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), http.StatusUnauthorized},
		{"other-audience", sign(k.priv, jwt.MapClaims{"iss": sessionName, "aud": "other", "sub": "a", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), http.StatusUnauthorized},
		{"tampered", set.AccessToken[:len(set.AccessToken)-4] + "AAAA", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sessionRequest()
			r.Header.Set("Authorization", "Bearer "+tc.token)
			if w, reached := serve(h, r); w.Code != tc.want || reached != (tc.want == http.StatusOK) {
				t.Errorf("status %d, reached %v; want %d", w.Code, reached, tc.want)
			}
		})
	}
}
