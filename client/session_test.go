package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
	"github.com/apiguard/apiguard/client"
)

// pay88Env is an 88Pay server made of apiguard's wrappers with a Pay88
// pointed at it, on one settable clock, whose waits are recorded instead of
// slept.
type pay88Env struct {
	clock  *apiguardtest.Clock
	s      *server88
	p      *client.Session
	hc     *http.Client
	mu     sync.Mutex
	sleeps []time.Duration
}

func newPay88Env(t *testing.T, opts ...client.Option) *pay88Env {
	t.Helper()
	return newPay88EnvLimit(t, nil, opts...)
}

// newPay88EnvLimit is newPay88Env with a per-merchant limit on the API.
func newPay88EnvLimit(t *testing.T, apiLimit []apiguard.Window, opts ...client.Option) *pay88Env {
	t.Helper()
	e := &pay88Env{clock: newClock()}
	e.s = newServer88(t, e.clock, apiLimit...)
	opts = append([]client.Option{client.WithClock(e.clock.Now)}, opts...)
	e.p = must[*client.Session](t)(client.NewSession(e.s.tokenURL(), e.s.key, e.s.merchant, nil, opts...))
	client.SetSleep(e.p, func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.sleeps = append(e.sleeps, d)
		e.mu.Unlock()
		e.clock.Advance(d)
		return ctx.Err()
	})
	e.hc = &http.Client{Transport: e.p}
	return e
}

// charge posts body to the server's API and returns the status.
func (e *pay88Env) charge(t *testing.T, ctx context.Context, body string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", e.s.srv.URL+"/api/charges", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (e *pay88Env) wantCalls(t *testing.T, token, api int64) {
	t.Helper()
	if got := e.s.tokenCalls.Load(); got != token {
		t.Errorf("token endpoint called %d times, want %d", got, token)
	}
	if got := e.s.apiCalls.Load(); got != api {
		t.Errorf("API called %d times, want %d", got, api)
	}
}

// burst sends n requests at once and fails t unless every one gets 200.
func (e *pay88Env) burst(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			status, err := e.charge(t, context.Background(), `{"amount":1}`)
			if err == nil && status != 200 {
				err = errors.New(http.StatusText(status))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// waitFor yields until cond holds, failing after 10 s of wall time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// TestPay88OneFetchPerRefresh holds the token endpoint until 50 concurrent
// callers all wait for the one token request, then lets it answer: one
// fetch serves them all. After 50 s of the token's 60 the next burst makes
// exactly one more.
func TestPay88OneFetchPerRefresh(t *testing.T) {
	e := newPay88Env(t)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the server's Close, which waits for held handlers
	e.s.gate = gate

	done := make(chan struct{})
	go func() {
		defer close(done)
		e.burst(t, 50)
	}()
	t.Cleanup(func() { open(); <-done })
	waitFor(t, "50 callers to wait for one token request", func() bool { return client.Waiting(e.p) == 50 })
	open()
	<-done
	e.wantCalls(t, 1, 50)

	e.clock.Advance(49 * time.Second)
	e.burst(t, 50)
	e.wantCalls(t, 1, 100)

	e.clock.Advance(1 * time.Second) // 50 s: due for replacement
	e.burst(t, 50)
	e.wantCalls(t, 2, 150)
}

// TestPay88RetryOn401 makes the server refuse the cached token under a
// burst of 50 callers, in each of the ways a real server does: the callers
// refused with 401 share one refresh and retry once, with the body sent
// again whole.
func TestPay88RetryOn401(t *testing.T) {
	for _, c := range []struct {
		name   string
		refuse func(e *pay88Env) error
	}{
		{"signing key rotated out of the ring", func(e *pay88Env) error { return e.s.rotateOut() }},
		{"session revoked", func(e *pay88Env) error {
			tok, err := e.p.Token(context.Background()) // the cached token
			if err != nil {
				return err
			}
			return e.s.sessions.RevokeSession(context.Background(), tok.SessionID)
		}},
		{"merchant's tokens revoked", func(e *pay88Env) error {
			err := e.s.sessions.RevokeSubject(context.Background(), e.s.merchant)
			e.clock.Advance(time.Second) // tokens issued from the next second on are valid
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newPay88Env(t)
			if status, err := e.charge(t, context.Background(), `{"amount":1}`); err != nil || status != 200 {
				t.Fatalf("first charge: %d %v", status, err)
			}
			if err := c.refuse(e); err != nil {
				t.Fatal(err)
			}
			e.burst(t, 50)
			// One token, then one refresh however many callers were
			// refused; each refused call was sent once more.
			refused := e.s.refused.Load()
			if refused == 0 {
				t.Fatal("no call was refused")
			}
			e.wantCalls(t, 2, 51+refused)
			for _, b := range e.s.bodies {
				if b != `{"amount":1}` {
					t.Fatalf("the API saw body %q", b)
				}
			}
		})
	}
}

// TestPay88RetryOn401Once: a request still refused with a fresh token gets
// its 401, after one retry only. The server rotates its signing key out as
// soon as it has issued each token.
func TestPay88RetryOn401Once(t *testing.T) {
	e := newPay88Env(t)
	req := must[*http.Request](t)(http.NewRequest("GET", e.s.srv.URL+"/api/charges", nil))
	req.Header.Set("X-Session-Id", "ignored") // the Session sets its own
	e.p = must[*client.Session](t)(client.NewSession(e.s.tokenURL(), e.s.key, e.s.merchant,
		roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(r)
			if r.URL.Path == "/api/auth/token" {
				if err := e.s.rotateOut(); err != nil {
					t.Error(err)
				}
			}
			return resp, err
		}), client.WithClock(e.clock.Now)))
	resp, err := (&http.Client{Transport: e.p}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"status":"Error","code":401,"message":"Unauthorized"}`; resp.StatusCode != 401 || !jsonEqual(t, string(b), want) {
		t.Errorf("%d %s, want 401 %s", resp.StatusCode, b, want)
	}
	e.wantCalls(t, 2, 2)
}

// TestPay88NoReplayWithoutGetBody: a body that cannot be sent again is
// sent once, and its 401 returned.
func TestPay88NoReplayWithoutGetBody(t *testing.T) {
	e := newPay88Env(t)
	e.charge(t, context.Background(), `{}`) // cache a token
	if err := e.s.rotateOut(); err != nil {
		t.Fatal(err)
	}
	req := must[*http.Request](t)(http.NewRequest("POST", e.s.srv.URL+"/api/charges", io.NopCloser(strings.NewReader(`{"a":1}`))))
	if req.GetBody != nil {
		t.Fatal("test needs a request without GetBody")
	}
	resp := must[*http.Response](t)(e.hc.Do(req))
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
	e.wantCalls(t, 1, 2)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPay88Backoff429 covers 429s from the token endpoint and from the
// API: Retry-After honoured within the bound, exponential waits without
// one, the 429 returned when the wait is too long or the retries run out.
//
// The real limiters answer the cases they can: the token endpoint's
// issuance limit (10 a minute per merchant, Retry-After at least 60 s) and
// a per-merchant limit on the API. The server's busy front answers the
// others, as the real limiter always sends Retry-After in seconds and
// admits a request that waited it out.
func TestPay88Backoff429(t *testing.T) {
	type tc struct {
		name             string
		apiLimit         []apiguard.Window
		opts             []client.Option
		drain            bool // spend the minute's 10 tokens first
		charges          int  // charges made first, all answered 200
		token429, api429 int  // the busy front's 429s
		retryAfter       string
		wantStatus       int
		wantTokenErr     bool
		wantRetryAfter   time.Duration
		wantSleeps       []time.Duration
		wantToken, wantA int64
	}
	for _, c := range []tc{
		{name: "issuance limit, Retry-After 60", drain: true, wantStatus: 200,
			wantSleeps: []time.Duration{time.Minute}, wantToken: 12, wantA: 1},
		{name: "issuance limit beyond the bound", drain: true, opts: []client.Option{client.WithRetry429(2, 59*time.Second)},
			wantTokenErr: true, wantRetryAfter: time.Minute, wantToken: 11},
		{name: "token 429 as HTTP-date", token429: 1, retryAfter: "Sun, 22 Nov 2026 10:00:30 GMT", wantStatus: 200,
			wantSleeps: []time.Duration{30 * time.Second}, wantToken: 2, wantA: 1},
		{name: "token 429 without Retry-After until retries run out", token429: 5, wantTokenErr: true,
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantToken: 3},
		{name: "API limit, then 200", apiLimit: []apiguard.Window{{Limit: 2, Period: 6 * time.Second}}, charges: 2, wantStatus: 200,
			wantSleeps: []time.Duration{3 * time.Second}, wantToken: 1, wantA: 4},
		{name: "API limit beyond the bound", apiLimit: []apiguard.Window{{Limit: 1, Period: 2 * time.Minute}}, charges: 1, wantStatus: 429,
			wantToken: 1, wantA: 2},
		{name: "API 429 without Retry-After, retries run out", api429: 5, wantStatus: 429,
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantToken: 1, wantA: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newPay88EnvLimit(t, c.apiLimit, c.opts...)
			if c.drain {
				e.s.drainIssuance(t)
			}
			for i := range c.charges {
				if status, err := e.charge(t, context.Background(), `{"amount":1}`); err != nil || status != 200 {
					t.Fatalf("charge %d: %d %v", i, status, err)
				}
			}
			e.s.token429, e.s.api429, e.s.retryAfter = c.token429, c.api429, c.retryAfter
			status, err := e.charge(t, context.Background(), `{"amount":1}`)
			var te *client.TokenError
			switch {
			case c.wantTokenErr:
				if !errors.As(err, &te) || te.StatusCode != 429 || te.Message != "Rate limit exceeded" || te.RetryAfter != c.wantRetryAfter {
					t.Errorf("err = %#v, want a 429 TokenError \"Rate limit exceeded\" with Retry-After %v", err, c.wantRetryAfter)
				}
			case err != nil || status != c.wantStatus:
				t.Errorf("got %d %v, want %d", status, err, c.wantStatus)
			}
			if !equalDurations(e.sleeps, c.wantSleeps) {
				t.Errorf("waits %v, want %v", e.sleeps, c.wantSleeps)
			}
			e.wantCalls(t, c.wantToken, c.wantA)
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPay88CancelBackoff cancels a caller during the 60-second wait the
// API's limit asks for: it returns at once with the context's error.
func TestPay88CancelBackoff(t *testing.T) {
	e := newPay88EnvLimit(t, []apiguard.Window{apiguard.PerMinute(1)})
	if status, err := e.charge(t, context.Background(), `{}`); err != nil || status != 200 {
		t.Fatalf("first charge: %d %v", status, err)
	}
	sleeping := make(chan struct{})
	client.SetSleep(e.p, func(ctx context.Context, d time.Duration) error {
		close(sleeping)
		return client.SleepContext(ctx, d) // a real 60 s wait, cut short
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sleeping; cancel() }()
	start := time.Now()
	_, err := e.charge(t, ctx, `{}`)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("the wait was not cut short")
	}
}

// TestPay88CancelTokenWait: callers that give up waiting for a token
// request abandon it, and a later caller starts a new one.
func TestPay88CancelTokenWait(t *testing.T) {
	e := newPay88Env(t)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the server's Close, which waits for held handlers
	e.s.gate = gate
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for range 2 {
		go func() { _, err := e.charge(t, ctx, `{}`); errc <- err }()
	}
	waitFor(t, "two waiters", func() bool { return client.Waiting(e.p) == 2 })
	cancel()
	for range 2 {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	}
	if n := client.Waiting(e.p); n != 0 {
		t.Errorf("%d waiters left", n)
	}
	open()
	if status, err := e.charge(t, context.Background(), `{}`); err != nil || status != 200 {
		t.Errorf("after the abandoned request: %d %v", status, err)
	}
}

// TestPay88OtherOrigin: requests to another host are sent untouched.
func TestPay88OtherOrigin(t *testing.T) {
	e := newPay88Env(t)
	var seen http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer other.Close()
	resp := must[*http.Response](t)(e.hc.Get(other.URL + "/api/charges"))
	resp.Body.Close()
	if seen.Get("Authorization") != "" || seen.Get("X-Session-Id") != "" {
		t.Errorf("another origin got credentials: %v", seen)
	}
	e.wantCalls(t, 0, 0)
}

// TestPay88Token: Token returns the cached token, and a fresh one, of a
// new session, when due.
func TestPay88Token(t *testing.T) {
	e := newPay88Env(t, client.WithTokenMargin(20*time.Second))
	first := must[client.Token](t)(e.p.Token(context.Background()))
	if strings.Count(first.AccessToken, ".") != 2 || !strings.HasPrefix(first.SessionID, "sess_") || !first.Expires.Equal(e.clock.Now().Add(60*time.Second)) {
		t.Errorf("token %+v", first)
	}
	e.clock.Advance(39 * time.Second)
	if tok := must[client.Token](t)(e.p.Token(context.Background())); tok != first {
		t.Errorf("at 39 s: %+v, want the first token", tok)
	}
	e.clock.Advance(time.Second)
	if tok := must[client.Token](t)(e.p.Token(context.Background())); tok.AccessToken == first.AccessToken || tok.SessionID == first.SessionID {
		t.Errorf("at 40 s: %+v, want a new token and session", tok)
	}
	e.wantCalls(t, 2, 0)
}

// TestTokenResponses feeds token endpoints that answer badly.
func TestTokenResponses(t *testing.T) {
	for _, c := range []struct {
		name, body string
		status     int
		wantErr    error
		wantLife   time.Duration // when to refresh, from the fetch
	}{
		{"seed body", `{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":"eyJ.a.b","expires_in":60,"session_id":"sess_53a2cfc4-441e-4554-b560-4e008784d98e"}}`, 200, nil, 50 * time.Second},
		{"no expires_in", `{"data":{"access_token":"t","session_id":"s"}}`, 200, nil, 50 * time.Second},
		{"short life", `{"data":{"access_token":"t","session_id":"s","expires_in":12}}`, 200, nil, 6 * time.Second},
		{"not JSON", `<html>`, 200, client.ErrTokenResponse, 0},
		{"no data", `{"status":"Success"}`, 200, client.ErrTokenResponse, 0},
		{"empty token", `{"data":{"access_token":"","session_id":"s"}}`, 200, client.ErrTokenResponse, 0},
		{"header injection", `{"data":{"access_token":"t\r\nX-Evil: 1","session_id":"s"}}`, 200, client.ErrTokenResponse, 0},
		{"space in session", `{"data":{"access_token":"t","session_id":"s s"}}`, 200, client.ErrTokenResponse, 0},
		{"zero life", `{"data":{"access_token":"t","session_id":"s","expires_in":0}}`, 200, client.ErrTokenResponse, 0},
		{"negative life", `{"data":{"access_token":"t","session_id":"s","expires_in":-5}}`, 200, client.ErrTokenResponse, 0},
		{"string life", `{"data":{"access_token":"t","session_id":"s","expires_in":"60"}}`, 200, client.ErrTokenResponse, 0},
		{"huge body", `{"data":{"access_token":"t","session_id":"s"},"pad":"` + strings.Repeat("x", 70<<10) + `"}`, 200, client.ErrTokenResponse, 0},
		{"500 without envelope", `oops`, 500, &client.TokenError{StatusCode: 500}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: c.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(c.body)), Request: r}, nil
			})
			p := must[*client.Session](t)(client.NewSession("https://pay.example/api/auth/token", "k", "m", base, client.WithClock(clk.Now)))
			tok, err := p.Token(context.Background())
			var te *client.TokenError
			switch want := c.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
				clk.Advance(c.wantLife - time.Nanosecond)
				if again, _ := p.Token(context.Background()); again != tok {
					t.Errorf("replaced before %v", c.wantLife)
				}
			case *client.TokenError:
				if !errors.As(err, &te) || te.StatusCode != want.StatusCode || te.Message != "" {
					t.Errorf("err = %v, want %v", err, want)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

// TestNewSessionConfig: configuration mistakes fail at construction.
func TestNewSessionConfig(t *testing.T) {
	for _, c := range []struct {
		name, url, key, merchant string
		opts                     []client.Option
	}{
		{"http to a public host", "http://pay.example/api/auth/token", "k", "m", nil},
		{"relative URL", "/api/auth/token", "k", "m", nil},
		{"user info", "https://u:p@pay.example/t", "k", "m", nil},
		{"ftp", "ftp://pay.example/t", "k", "m", nil},
		{"empty key", "https://pay.example/t", "", "m", nil},
		{"key with space", "https://pay.example/t", "k k", "m", nil},
		{"empty merchant", "https://pay.example/t", "k", "", nil},
		{"nil clock", "https://pay.example/t", "k", "m", []client.Option{client.WithClock(nil)}},
		{"negative margin", "https://pay.example/t", "k", "m", []client.Option{client.WithTokenMargin(-1)}},
		{"negative retries", "https://pay.example/t", "k", "m", []client.Option{client.WithRetry429(-1, time.Second)}},
		{"zero wait", "https://pay.example/t", "k", "m", []client.Option{client.WithRetry429(1, 0)}},
		{"a hash Signer's option", "https://pay.example/t", "k", "m", []client.Option{client.SendKey("X-Api-Key")}},
		{"zero option", "https://pay.example/t", "k", "m", []client.Option{{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := client.NewSession(c.url, c.key, c.merchant, nil, c.opts...); err == nil {
				t.Error("no error")
			}
		})
	}
	for _, ok := range []string{"http://127.0.0.1:8080/t", "http://localhost/t", "http://[::1]:9/t", "https://pay.example/t"} {
		if _, err := client.NewSession(ok, "k", "m", nil); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestPay88BodyReplayed: a POST retried after a 401 sends the same bytes.
func TestPay88BodyReplayed(t *testing.T) {
	e := newPay88Env(t)
	e.charge(t, context.Background(), `{}`)
	if err := e.s.rotateOut(); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789"), 1000)
	req := must[*http.Request](t)(http.NewRequest("POST", e.s.srv.URL+"/api/charges", bytes.NewReader(body)))
	resp := must[*http.Response](t)(e.hc.Do(req))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.s.bodies[len(e.s.bodies)-2:]
	if got[0] != string(body) || got[1] != string(body) {
		t.Error("the retry did not send the same body")
	}
	if a := e.s.authSeen; a[len(a)-2] == a[len(a)-1] {
		t.Error("the retry reused the refused token")
	}
}
