package apiguard

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSeedErrorRows renders every row of the error table of DESIGN.md in
// its dialect and compares the body with the seed's, to the letter.
func TestSeedErrorRows(t *testing.T) {
	productDialect := Reseller().WithMessage(CodeRateLimited, Message{EN: "Too many requests. Please try again later."})
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
		})
	}
}

func TestProblemLocalized(t *testing.T) {
	g := MustNew(nil)
	for _, tc := range []struct{ lang, detail string }{
		{"", "Kunci API tidak valid"},
		{"id", "Kunci API tidak valid"},
		{"en", "Invalid API key"},
		{"EN-us", "Invalid API key"},
		{"fr", "Kunci API tidak valid"},
		{"english", "Kunci API tidak valid"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.lang != "" {
			r.Header.Set("x-language", tc.lang)
		}
		w := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, ErrInvalidKey) }), r)
		wantBody(t, w, 401, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"`+tc.detail+`","code":"invalid_key"}`)
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}

func TestDialectOverrideAndCustom(t *testing.T) {
	d := MockPay().WithMessage(CodeForbidden, Message{EN: "Nope"})
	if MockPay().Messages[CodeForbidden].EN == "Nope" {
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
	if e.Status != 401 || e.Code != CodeInvalidToken {
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
			g.Deny(w, r, &Error{Status: 429, Code: CodeRateLimited, RetryAfter: tc.d})
		}), httptest.NewRequest("GET", "/", nil))
		if got := w.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("%v: Retry-After = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestErrorStringHasNoSecret(t *testing.T) {
	e := NewError(ErrInvalidKey)
	if s := e.Error(); !strings.Contains(s, "invalid_key") {
		t.Errorf("Error() = %q", s)
	}
}
