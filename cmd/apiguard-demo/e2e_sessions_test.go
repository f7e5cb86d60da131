package main

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the gateway.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	pay88Unauthorized = `{"status":"Error","code":401,"message":"Unauthorized"}`
	pay88BadCreds     = `{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`
	pay88NoSession    = `{"status":"Error","code":400,"message":"Missing required header: x-session-id"}`
	pay88HTTPS        = `{"status":"Error","code":403,"message":"HTTPS required"}`
)

var sessionIDPattern = regexp.MustCompile(`^sess_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPay88(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now, tokenTTL: 5 * time.Second})
	tokenURL := d.secure + "/88pay/api/auth/token"
	creds := []string{"x-api-key", pay88Key, "x-merchant-id", pay88Merchant}

	r := d.call(t, "POST", tokenURL, "", creds...)
	if r.status != 200 || r.field(t, "status") != "Success" || r.field(t, "code") != 200.0 ||
		r.field(t, "message") != "Token generated successfully" || r.field(t, "data.expires_in") != 5.0 {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	token := r.field(t, "data.access_token").(string)
	sid := r.field(t, "data.session_id").(string)
	if !sessionIDPattern.MatchString(sid) || strings.Count(token, ".") != 2 || !strings.HasPrefix(token, "eyJhbGciOiJFUzI1NiIs") {
		t.Fatalf("token %q session %q", token, sid)
	}

	charges := d.secure + "/88pay/api/transactions/charges"
	charge := `{"flow":"PAYIN","method_code":"CARDS","amount":50000,"currency":"COP","country":"COL"}`
	auth := func(tok, s string) []string {
		h := []string{"Content-Type", "application/json"}
		if tok != "" {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		if s != "" {
			h = append(h, "x-session-id", s)
		}
		return h
	}
	r = d.call(t, "POST", charges, charge, auth(token, sid)...)
	if r.status != 200 || r.field(t, "status") != "Success" || r.field(t, "data.merchant_id") != pay88Merchant {
		t.Errorf("charge: %d %s", r.status, r.body)
	}

	// Token endpoint errors.
	d.call(t, "POST", tokenURL, "", "x-api-key", pay88Key, "x-merchant-id", "MCH-COL-OTHER").want(t, 401, pay88BadCreds)
	d.call(t, "POST", tokenURL, "", "x-api-key", "sk_test_wrong", "x-merchant-id", pay88Merchant).want(t, 401, pay88BadCreds)
	d.call(t, "POST", tokenURL, "", "x-api-key", pay88LiveKey, "x-merchant-id", pay88Merchant).want(t, 401, pay88BadCreds)
	d.call(t, "POST", tokenURL, "", "x-api-key", pay88Key).want(t, 401, pay88BadCreds)

	// Charge errors.
	d.call(t, "POST", charges, charge, auth(token, "")...).want(t, 400, pay88NoSession)
	d.call(t, "POST", charges, charge, auth("", sid)...).want(t, 401, pay88Unauthorized)
	d.call(t, "POST", charges, charge, auth("not.a.jwt", sid)...).want(t, 401, pay88Unauthorized)
	d.call(t, "POST", charges, charge, auth(token[:len(token)-4]+"AAAA", sid)...).want(t, 401, pay88Unauthorized)
	other := d.call(t, "POST", tokenURL, "", creds...)
	d.call(t, "POST", charges, charge, auth(token, other.field(t, "data.session_id").(string))...).want(t, 401, pay88Unauthorized)

	// HTTPS only: plain HTTP is refused unless a trusted (loopback) proxy
	// says the client came over HTTPS.
	d.call(t, "POST", d.base+"/88pay/api/auth/token", "", creds...).want(t, 403, pay88HTTPS)
	d.call(t, "POST", d.base+"/88pay/api/transactions/charges", charge, auth(token, sid)...).want(t, 403, pay88HTTPS)
	d.call(t, "POST", d.base+"/88pay/api/transactions/charges", charge, auth(token, sid)...).want(t, 403, pay88HTTPS)
	if r := d.call(t, "POST", d.base+"/88pay/api/transactions/charges", charge, append(auth(token, sid), "X-Forwarded-Proto", "https")...); r.status != 200 {
		t.Errorf("behind the loopback proxy: %d %s", r.status, r.body)
	}

	// Expiry: the token lives -token-ttl.
	clock.Advance(4 * time.Second)
	if r := d.call(t, "POST", charges, charge, auth(token, sid)...); r.status != 200 {
		t.Errorf("at 4s of 5: %d %s", r.status, r.body)
	}
	clock.Advance(2 * time.Second)
	d.call(t, "POST", charges, charge, auth(token, sid)...).want(t, 401, pay88Unauthorized)
}

func TestClientSystem(t *testing.T) {
	d := startDemo(t, config{})
	n := 0
	reqID := func() string {
		n++
		return "req-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+n%26)) + strings.Repeat("x", n/26)
	}
	hdr := func(extra ...string) []string {
		return append([]string{"x-app-key", clientAppKey, "x-request-id", reqID(), "Content-Type", "application/json"}, extra...)
	}
	login := d.base + "/client/auth/login"
	creds := `{"username":"demo","password":"demo-password"}`

	r := d.call(t, "POST", login, creds, hdr()...)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	userTok, access, refresh := r.field(t, "user_token").(string), r.field(t, "access_token").(string), r.field(t, "refresh_token").(string)
	if userTok == "" || access == "" || refresh == "" || r.field(t, "expires_in") == nil {
		t.Fatalf("login body %s", r.body)
	}
	me := d.base + "/client/me"
	r = d.call(t, "GET", me, "", hdr("Authorization", "Bearer "+access, "x-user-token", userTok)...)
	if r.status != 200 || r.field(t, "username") != "demo" {
		t.Errorf("me: %d %s", r.status, r.body)
	}

	problem := func(status int, title, detail, code string) string {
		return `{"type":"about:blank","title":"` + title + `","status":` + strconv.Itoa(status) + `,"detail":"` + detail + `","code":"` + code + `"}`
	}
	// The general headers, in both languages.
	d.call(t, "POST", login, creds, "x-request-id", reqID()).want(t, 401, problem(401, "Unauthorized", "Header wajib tidak ada: x-app-key", "missing_app_key"))
	noID := []string{"x-app-key", clientAppKey, "Content-Type", "application/json"}
	d.call(t, "POST", login, creds, noID...).want(t, 400, problem(400, "Bad Request", "Header wajib tidak ada: x-request-id", "missing_request_id"))
	d.call(t, "POST", login, creds, append(noID, "x-language", "en")...).want(t, 400, problem(400, "Bad Request", "Missing required header: x-request-id", "missing_request_id"))
	d.call(t, "POST", login, creds, append(noID, "x-language", "fr")...).want(t, 400, problem(400, "Bad Request", "Header wajib tidak ada: x-request-id", "missing_request_id"))
	seen := append(noID, "x-request-id", "fixed-id-1")
	if r := d.call(t, "POST", login, creds, seen...); r.status != 200 {
		t.Fatalf("first use of an id: %d %s", r.status, r.body)
	}
	d.call(t, "POST", login, creds, append(seen, "x-language", "en")...).want(t, 409, problem(409, "Conflict", "x-request-id has already been used", "duplicate_request_id"))
	d.call(t, "POST", login, creds, hdr("x-language", "en")[:0]...).want(t, 401, problem(401, "Unauthorized", "Header wajib tidak ada: x-app-key", "missing_app_key"))
	d.call(t, "POST", login, `{"username":"demo","password":"nope"}`, hdr("x-language", "en")...).want(t, 401,
		problem(401, "Unauthorized", "Invalid username or password", "invalid_credentials"))

	// Token kinds: each route takes its own kind only.
	invalid := problem(401, "Unauthorized", "Invalid or expired token", "invalid_token")
	for name, tc := range map[string]struct {
		method, url string
		headers     []string
	}{
		"me with a refresh token":       {"GET", me, []string{"Authorization", "Bearer " + refresh, "x-user-token", userTok}},
		"me without x-user-token":       {"GET", me, []string{"Authorization", "Bearer " + access}},
		"me with the user token twice":  {"GET", me, []string{"Authorization", "Bearer " + userTok, "x-user-token", userTok}},
		"access-token with access":      {"POST", d.base + "/client/auth/access-token", []string{"Authorization", "Bearer " + access}},
		"access-token with user token":  {"POST", d.base + "/client/auth/access-token", []string{"Authorization", "Bearer " + userTok}},
		"refresh-token with refresh":    {"POST", d.base + "/client/auth/refresh-token", []string{"Authorization", "Bearer " + refresh}},
		"refresh-token without a token": {"POST", d.base + "/client/auth/refresh-token", nil},
	} {
		t.Run(name, func(t *testing.T) {
			d.call(t, tc.method, tc.url, "", hdr(append(tc.headers, "x-language", "en")...)...).want(t, 401, invalid)
		})
	}

	// A refresh token buys a new access token (and the next refresh token)...
	r = d.call(t, "POST", d.base+"/client/auth/access-token", "", hdr("Authorization", "Bearer "+refresh)...)
	if r.status != 200 || r.field(t, "access_token") == nil {
		t.Fatalf("access-token: %d %s", r.status, r.body)
	}
	access2 := r.field(t, "access_token").(string)
	if r := d.call(t, "GET", me, "", hdr("Authorization", "Bearer "+access2, "x-user-token", userTok)...); r.status != 200 {
		t.Errorf("me with the new access token: %d", r.status)
	}
	// ...the user token a new refresh token...
	r = d.call(t, "POST", d.base+"/client/auth/refresh-token", "", hdr("Authorization", "Bearer "+userTok)...)
	if r.status != 200 || r.field(t, "refresh_token") == nil {
		t.Fatalf("refresh-token: %d %s", r.status, r.body)
	}
	// ...and a spent refresh token, used again, is refused and ends the session.
	d.call(t, "POST", d.base+"/client/auth/access-token", "", hdr("Authorization", "Bearer "+refresh, "x-language", "en")...).want(t, 401, invalid)
	d.call(t, "GET", me, "", hdr("Authorization", "Bearer "+access2, "x-user-token", userTok, "x-language", "en")...).want(t, 401, invalid)
}

// TestPay88IssuanceLimits: 10 tokens per minute and 100 per hour per
// merchant, to the exact count, then 429 with Retry-After.
func TestPay88IssuanceLimits(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	tokenURL := d.secure + "/88pay/api/auth/token"
	creds := []string{"x-api-key", pay88Key, "x-merchant-id", pay88Merchant}
	limited := `{"status":"Error","code":429,"message":"Rate limit exceeded"}`
	issued := 0
	take := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if r := d.call(t, "POST", tokenURL, "", creds...); r.status != 200 {
				t.Fatalf("token %d: %d %s", issued+1, r.status, r.body)
			}
			issued++
		}
	}
	take(10)
	r := d.call(t, "POST", tokenURL, "", creds...)
	r.want(t, 429, limited)
	if ra := r.header.Get("Retry-After"); ra != "60" {
		t.Errorf("Retry-After = %q, want 60", ra)
	}
	// Bad credentials are refused as such and take nothing.
	d.call(t, "POST", tokenURL, "", "x-api-key", "sk_test_wrong", "x-merchant-id", pay88Merchant).want(t, 401,
		`{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`)
	// Windows are token buckets: the hourly one holds 100 tokens and gets
	// one back every 36 s. Ten tokens a minute drain it by 10 - 60/36 a
	// minute: minutes 0 to 10 get their ten (110 in all), minute 11 finds
	// 100 - 110 + 11*60/36 = 8.33 tokens, so 8 more, and then the hourly
	// window refuses though the minute's window still has two.
	for minute := 1; minute <= 11; minute++ {
		clock.Advance(time.Minute)
		if minute < 11 {
			take(10)
		} else {
			take(8)
		}
		r := d.call(t, "POST", tokenURL, "", creds...)
		r.want(t, 429, limited)
		if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 60 {
			t.Errorf("minute %d: Retry-After %d, want at least 60", minute, ra)
		}
	}
	if issued != 118 {
		t.Errorf("issued %d tokens, want 118", issued)
	}
}

// TestClientPerIPLimit: 120 requests a minute per IP on the client-system
// API, counted before the app key is checked.
func TestClientPerIPLimit(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	for i := 0; i < 120; i++ {
		r := d.call(t, "POST", d.base+"/client/auth/login", "{}", "X-Forwarded-For", "203.0.113.80")
		if r.status != 401 {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := d.call(t, "POST", d.base+"/client/auth/login", "{}", "X-Forwarded-For", "203.0.113.80", "x-language", "en")
	r.want(t, 429, `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests","code":"rate_limited"}`)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if r := d.call(t, "POST", d.base+"/client/auth/login", "{}", "X-Forwarded-For", "203.0.113.81"); r.status != 401 {
		t.Errorf("another IP: %d", r.status)
	}
}
