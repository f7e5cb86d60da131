package apiguard

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSeedErrorRows renders every row of the error table of DESIGN.md in
// its dialect and compares the body with the seed's, to the letter.
func TestSeedErrorRows(t *testing.T) {
	productDialect := Reseller().WithMessage("rate_limited", Message{EN: "Too many requests. Please try again later."})
	rows := []struct {
		name    string
		dialect Dialect
		reason  error
		status  int
		body    string
	}{
		// MockPay (000)
		{"mockpay/missing", MockPay(), ErrMissingKey, 401, `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`},
		{"mockpay/invalid", MockPay(), ErrInvalidKey, 401, `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`},
		{"mockpay/forbidden", MockPay(), ErrForbidden, 403, `{"success":false,"error":{"code":"FORBIDDEN","message":"Insufficient permissions for this operation"}}`},
		// Reseller (001)
		{"reseller/missing", Reseller(), ErrMissingKey, 401, `{"status":"error","message":"Unauthorized","code":401}`},
		{"reseller/invalid", Reseller(), ErrInvalidKey, 401, `{"status":"error","message":"Invalid API key","code":401}`},
		{"reseller/hash", Reseller(), ErrHashMismatch, 401, `{"status":"error","message":"Invalid hash combination","code":401}`},
		{"reseller/headers", Reseller(), ErrMissingHeaders, 401, `{"status":"error","message":"Unauthorized: Missing required headers","code":401}`},
		{"reseller/whitelist", Reseller(), ErrIPNotWhitelisted, 403, `{"status":"error","message":"IP belum di whitelist","code":403}`},
		{"reseller/registered-ip", Reseller(), ErrIPNotRegistered, 403, `{"status":"error","message":"IP address not authorized","code":403}`},
		{"reseller/expired", Reseller(), ErrRequestExpired, 400, `{"status":"error","message":"Request expired","code":400}`},
		{"reseller/time-format", Reseller(), ErrRequestTimeFormat, 400, `{"status":"error","message":"Invalid X-Request-Time format","code":400}`},
		{"reseller/rate", Reseller(), ErrRateLimited, 429, `{"status":"error","message":"Too many requests","code":429}`},
		{"reseller/rate-product", productDialect, ErrRateLimited, 429, `{"status":"error","message":"Too many requests. Please try again later.","code":429}`},
		// 88Pay (004)
		{"88pay/missing", Pay88(), ErrMissingKey, 401, `{"status":"Error","code":401,"message":"Unauthorized"}`},
		{"88pay/token", Pay88(), ErrInvalidToken, 401, `{"status":"Error","code":401,"message":"Unauthorized"}`},
		{"88pay/invalid", Pay88(), ErrInvalidKey, 401, `{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`},
		{"88pay/session", Pay88(), ErrMissingSessionID, 400, `{"status":"Error","code":400,"message":"Missing required header: x-session-id"}`},
		{"88pay/rate", Pay88(), ErrRateLimited, 429, `{"status":"Error","code":429,"message":"Rate limit exceeded"}`},
		{"88pay/https", Pay88(), ErrHTTPSRequired, 403, `{"status":"Error","code":403,"message":"HTTPS required"}`},
		// Midtrans (002)
		{"midtrans/missing", Midtrans(), ErrMissingKey, 401, `{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`},
		{"midtrans/media", Midtrans(), ErrUnsupportedMediaType, 415, `{"status_code":"415","status_message":"Content-Type must be application/json"}`},
		{"midtrans/accept", Midtrans(), ErrNotAcceptable, 406, `{"status_code":"406","status_message":"Accept must allow application/json"}`},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			g := MustNew(nil, WithDialect(row.dialect))
			w := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, row.reason) }),
				httptest.NewRequest("GET", "/", nil))
			wantBody(t, w, row.status, row.body)
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if v := w.Result().Header.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", v)
			}
		})
	}
}

// TestProblemLocalized: Problem answers in English unless x-language asks
// for Indonesian; with DefaultLanguage "id" (the client-system API's), in
// Indonesian unless it asks for English.
func TestProblemLocalized(t *testing.T) {
	const en, id = "Invalid API key", "Kunci API tidak valid"
	english, indonesian := MustNew(nil), MustNew(nil, WithDialect(clientSystem()))
	for _, tc := range []struct {
		g            *Guard
		lang, detail string
	}{
		{english, "", en},
		{english, "id", id},
		{english, "ID-id", id},
		{english, "en", en},
		{english, "fr", en},
		{english, "idn", en},
		{indonesian, "", id},
		{indonesian, "id", id},
		{indonesian, "en", en},
		{indonesian, "EN-us", en},
		{indonesian, "fr", id},
		{indonesian, "english", id},
	} {
		g := tc.g
		r := httptest.NewRequest("GET", "/", nil)
		if tc.lang != "" {
			r.Header.Set("x-language", tc.lang)
		}
		w := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, ErrInvalidKey) }), r)
		wantBody(t, w, 401, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"`+tc.detail+`","code":"invalid_key"}`)
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if v := w.Result().Header.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("X-Content-Type-Options = %q, want nosniff", v)
		}
	}
}

// TestRejectionsAreNosniff: every rejection, in every built-in dialect,
// carries X-Content-Type-Options: nosniff, so that no browser reads an
// error body as anything but the JSON it is: every reason and a handler's
// own errors through Deny, and the refusals of wrappers that take
// different paths to the renderer (a check with state, a gate, the rate
// limit).
func TestRejectionsAreNosniff(t *testing.T) {
	dialects := map[string]Dialect{"problem": Problem(), "mockpay": MockPay(), "reseller": Reseller(), "pay88": Pay88(), "midtrans": Midtrans()}
	denied := []error{
		ErrMissingKey, ErrInvalidKey, ErrForbidden, ErrIdentityConflict, ErrHashMismatch, ErrMissingHeaders,
		ErrInvalidAuthorization, ErrInvalidField, ErrIPNotWhitelisted, ErrIPNotRegistered, ErrHTTPSRequired,
		ErrUnsupportedMediaType, ErrNotAcceptable, ErrRequestExpired, ErrRequestTimeFormat, ErrMissingRequestID,
		ErrDuplicateRequestID, ErrMissingSessionID, ErrInvalidToken, ErrBodyTooLarge, ErrInvalidBody,
		ErrRateLimited, ErrUnavailable, ErrMissingAppKey, ErrInvalidAppKey, ErrInvalidRequestID,
		fmt.Errorf("%w: key store: %w", ErrUnavailable, errors.New("down")),
		errors.New("db down"), // a 500
		&Error{Status: 404, Code: "not_found", Message: "Payment not found"},
		&Error{Status: 429, Code: "rate_limited", RetryAfter: time.Second, Err: ErrRateLimited},
	}
	for name, d := range dialects {
		g := MustNew(Bearer(mockPayStore(t)), WithDialect(d))
		limit := mustRateLimit(t, g, mustLimiter(t, newTestClock(), []Window{PerMinute(1)}), ByRoute())
		check := func(what string, w *httptest.ResponseRecorder) {
			t.Helper()
			if w.Code < 400 {
				t.Fatalf("%s/%s: status %d, want a rejection", name, what, w.Code)
			}
			if v := w.Result().Header.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("%s/%s (%d): X-Content-Type-Options = %q, want nosniff", name, what, w.Code, v)
			}
		}
		for _, err := range denied {
			check(err.Error(), serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, err) }),
				httptest.NewRequest("GET", "/", nil)))
		}
		check("Authenticate", serve(g.Authenticate()(okHandler), httptest.NewRequest("GET", "/", nil)))
		check("RequireJSON", serve(g.RequireJSON()(okHandler), httptest.NewRequest("POST", "/", strings.NewReader("x=1"))))
		serve(limit(okHandler), httptest.NewRequest("GET", "/", nil))
		check("RateLimit", serve(limit(okHandler), httptest.NewRequest("GET", "/", nil)))
	}
}

func TestDialectOverrideAndCustom(t *testing.T) {
	d := MockPay().WithMessage("forbidden", Message{EN: "Nope"})
	if MockPay().Messages["forbidden"].EN == "Nope" {
		t.Fatal("WithMessage changed the original dialect")
	}
	g := MustNew(nil, WithDialect(d))
	deny := func(err error) *httptest.ResponseRecorder {
		return serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, err) }),
			httptest.NewRequest("GET", "/", nil))
	}
	wantBody(t, deny(ErrForbidden), 403, `{"success":false,"error":{"code":"FORBIDDEN","message":"Nope"}}`)
	// A handler's own error, in the same envelope.
	wantBody(t, deny(&Error{Status: 404, Code: "not_found", Message: "Payment not found"}), 404,
		`{"success":false,"error":{"code":"NOT_FOUND","message":"Payment not found"}}`)
	// Any other error is a 500 that shows nothing of itself.
	w := deny(errors.New("db password=hunter2 refused"))
	wantBody(t, w, 500, `{"success":false,"error":{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}}`)

	custom := &JSONDialect{Body: func(e *Error, msg string) any {
		return map[string]any{"ok": false, "why": e.Code, "text": msg}
	}}
	g2 := MustNew(nil, WithDialect(custom))
	w = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g2.Deny(w, r, ErrRateLimited) }),
		httptest.NewRequest("GET", "/", nil))
	wantBody(t, w, 429, `{"ok":false,"why":"rate_limited","text":"Too many requests"}`)
}

func TestErrorsIs(t *testing.T) {
	cause := errors.New("token is expired")
	e := NewError(fmt.Errorf("%w: %w", ErrInvalidToken, cause))
	if e.Status != 401 || e.Code != "invalid_token" {
		t.Fatalf("got %d %s", e.Status, e.Code)
	}
	if !errors.Is(e, ErrInvalidToken) || !errors.Is(e, cause) || errors.Is(e, ErrInvalidKey) {
		t.Error("errors.Is does not match reason and cause only")
	}
	var target *Error
	if !errors.As(error(e), &target) || target != e {
		t.Error("errors.As")
	}
	if NewError(e) != e {
		t.Error("NewError of an *Error is not itself")
	}
	if NewError(nil) != nil {
		t.Error("NewError(nil)")
	}
	for _, sentinel := range []error{ErrMissingKey, ErrInvalidKey, ErrForbidden, ErrRateLimited, ErrUnavailable} {
		e := NewError(sentinel)
		r := sentinel.(*reason)
		if e.Status != r.status || e.Code != r.code || !errors.Is(e, sentinel) {
			t.Errorf("%v: got %d %s", sentinel, e.Status, e.Code)
		}
		if m, ok := text(e); !ok || m.ID == "" || m.EN == "" {
			t.Errorf("code %s has no catalogue text", r.code)
		}
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	g := MustNew(nil)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {60 * time.Second, "60"}} {
		w := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.Deny(w, r, &Error{Status: 429, Code: "rate_limited", RetryAfter: tc.d})
		}), httptest.NewRequest("GET", "/", nil))
		if got := w.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("%v: Retry-After = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestErrorStringHasNoSecret refuses requests that carry a credential, for
// reasons whose causes involve it (an unknown key, a backend failing on the
// key's lookup, a key of another merchant, a hash made with the key, a
// forged or expired session token), and checks that the credential shows in
// none of what the refusal leaves behind: the *Error's Error(), the log line
// of WithLogger, the response headers and body.
func TestErrorStringHasNoSecret(t *testing.T) {
	if s := NewError(ErrInvalidKey).Error(); !strings.Contains(s, "invalid_key") {
		t.Errorf("Error() = %q", s)
	}

	const (
		secret  = "sk_test_S3cr3tK3y_9f8e7d6c5b4a"
		unknown = "sk_test_Unkn0wnK3y_0a1b2c3d4e"
	)
	store := mustStore(t, KeySpec{Key: secret, Client: Client{ID: "merchant-1", KeyID: "kid-1"}, KeepSecret: true})
	f := newSessFixture(t)
	expired, expiredSID := f.issue(t, payKey, payMerchant)
	f.clock.Advance(2 * time.Minute)
	other, err := GenerateSigningKey(f.key.ID())
	if err != nil {
		t.Fatal(err)
	}
	forged := sign(t, jwt.SigningMethodES256, other.priv, map[string]any{"kid": f.key.ID()}, f.claims(payMerchant, "sess_forged"))
	signature := func(tok string) string { return tok[strings.LastIndexByte(tok, '.')+1:] }

	withHeaders := func(r *http.Request, kv ...string) *http.Request {
		for i := 0; i < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	get := func(kv ...string) *http.Request {
		return withHeaders(httptest.NewRequest("GET", "/charges", nil), kv...)
	}
	cases := []struct {
		name    string
		scheme  Scheme
		r       *http.Request
		secrets []string // what must not leak
		reason  error
		cause   string // text of a cause Error() must show; "" for none
	}{
		{"unknown bearer key", Bearer(store), get("Authorization", "Bearer "+unknown), []string{unknown}, ErrInvalidKey, ""},
		{"bearer lookup fails", Bearer(failingStore{}), get("Authorization", "Bearer "+secret), []string{secret}, ErrUnavailable, "connection refused"},
		{"basic lookup fails", Basic(failingStore{}),
			get("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(secret+":"))), []string{secret}, ErrUnavailable, "connection refused"},
		{"merchant lookup fails", MerchantKey(failingStore{}), get("X-Api-Key", secret, "X-Merchant-Id", "merchant-1"), []string{secret}, ErrUnavailable, "connection refused"},
		{"key of another merchant", MerchantKey(store), get("X-Api-Key", secret, "X-Merchant-Id", "merchant-2"), []string{secret}, ErrInvalidKey, ""},
		{"hash made with the key", HashSignature(SignerFromHeader(store, "X-Api-Key"), []Field{BodyField("ref_id", nil)}),
			withHeaders(newReq(`{"ref_id":"R1"}`), "X-Api-Key", secret, "Authorization", "Bearer "+seedHash(secret, "R2")), []string{secret}, ErrHashMismatch, ""},
		{"forged token", f.s.SessionScheme(), call(forged, "sess_forged"), []string{forged, signature(forged)}, ErrInvalidToken, "signature"},
		{"expired token", f.s.SessionScheme(), call(expired, expiredSID), []string{expired, signature(expired)}, ErrInvalidToken, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var denial Decision
			g := MustNew(tc.scheme, WithObserver(func(d Decision) {
				if d.Allowed {
					return
				}
				denial = d
			}),
				WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithClock(f.clock.Now))
			w := serve(g.Authenticate()(okHandler), tc.r)
			if denial.Err == nil || !errors.Is(denial.Err, tc.reason) {
				t.Fatalf("status %d, denial %v: want a refusal for %v", w.Code, denial.Err, tc.reason)
			}
			msg := denial.Err.Error()
			if !strings.Contains(msg, tc.cause) {
				t.Errorf("Error() = %q, want its cause %q", msg, tc.cause)
			}
			if !strings.Contains(logs.String(), "request denied") {
				t.Fatalf("no log line: %q", logs.String())
			}
			var headers strings.Builder
			for k, vs := range w.Header() {
				headers.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
			}
			for _, s := range tc.secrets {
				for where, text := range map[string]string{"Error()": msg, "log": logs.String(), "headers": headers.String(), "body": w.Body.String()} {
					if strings.Contains(text, s) {
						t.Errorf("the credential %q is in the %s: %q", s, where, text)
					}
				}
			}
		})
	}
}

// TestReasonCodesAreDocumented: the code and status errors.go documents
// beside each reason, `// ErrX (code "x", 401): ...`, are the ones
// NewError gives it, every reason is documented so, and no two reasons
// share a code.
func TestReasonCodesAreDocumented(t *testing.T) {
	reasons := map[string]error{
		"ErrMissingKey": ErrMissingKey, "ErrInvalidKey": ErrInvalidKey, "ErrForbidden": ErrForbidden,
		"ErrIdentityConflict": ErrIdentityConflict, "ErrHashMismatch": ErrHashMismatch, "ErrMissingHeaders": ErrMissingHeaders,
		"ErrInvalidAuthorization": ErrInvalidAuthorization, "ErrInvalidField": ErrInvalidField,
		"ErrIPNotWhitelisted": ErrIPNotWhitelisted, "ErrIPNotRegistered": ErrIPNotRegistered, "ErrHTTPSRequired": ErrHTTPSRequired,
		"ErrUnsupportedMediaType": ErrUnsupportedMediaType, "ErrNotAcceptable": ErrNotAcceptable,
		"ErrRequestExpired": ErrRequestExpired, "ErrRequestTimeFormat": ErrRequestTimeFormat,
		"ErrMissingRequestID": ErrMissingRequestID, "ErrDuplicateRequestID": ErrDuplicateRequestID,
		"ErrMissingSessionID": ErrMissingSessionID, "ErrInvalidToken": ErrInvalidToken, "ErrBodyTooLarge": ErrBodyTooLarge,
		"ErrInvalidBody": ErrInvalidBody, "ErrRateLimited": ErrRateLimited, "ErrUnavailable": ErrUnavailable,
		"ErrMissingAppKey": ErrMissingAppKey, "ErrInvalidAppKey": ErrInvalidAppKey, "ErrInvalidRequestID": ErrInvalidRequestID,
	}
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	doc := regexp.MustCompile(`^(Err\w+) \(code "([a-z_]+)", (\d{3})\): `)
	documented := map[string]bool{}
	codes := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			m := doc.FindStringSubmatch(vs.Doc.Text())
			if m == nil {
				continue
			}
			name, code, status := m[1], m[2], m[3]
			if len(vs.Names) != 1 || vs.Names[0].Name != name {
				t.Errorf("the doc of %s names %s", vs.Names[0].Name, name)
				continue
			}
			e := NewError(reasons[name])
			if reasons[name] == nil || e.Code != code || strconv.Itoa(e.Status) != status {
				t.Errorf("%s is documented as %s %s, NewError gives %+v", name, code, status, e)
			}
			if other, ok := codes[code]; ok {
				t.Errorf("%s and %s share the code %q", name, other, code)
			}
			codes[code], documented[name] = name, true
		}
	}
	for name := range reasons {
		if !documented[name] {
			t.Errorf("%s has no documented code", name)
		}
	}
	if e := NewError(errors.New("db down")); e.Code != "internal_error" || e.Status != 500 {
		t.Errorf("another error: %+v", e)
	}
}

// FuzzLanguage checks the x-language reader: whatever the header, the
// answer is "en" exactly for "en" or "en-*" in any case, "id" for "id" or
// "id-*", and the dialect's default otherwise.
func FuzzLanguage(f *testing.F) {
	for _, s := range []string{"", "en", "EN-us", "id", "id-ID", "idn", "english", "e", "-", "en-", "\x00en", "fr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["X-Language"] = []string{v}
		got := language(r, "default")
		// ASCII case folding, byte by byte: only 'E' and 'e' give 'e'.
		tagged := func(tag string) bool {
			return len(v) >= 2 && v[0]|0x20 == tag[0] && v[1]|0x20 == tag[1] && (len(v) == 2 || v[2] == '-')
		}
		want := "default"
		switch {
		case tagged("en"):
			want = "en"
		case tagged("id"):
			want = "id"
		}
		if got != want {
			t.Errorf("language(%q) = %q, want %q", v, got, want)
		}
	})
}
