package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard/client"
)

// recorder is a base transport that keeps the requests it is given.
type recorder struct {
	mu    sync.Mutex
	reqs  []*http.Request
	bodes []string
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r)
	rec.bodes = append(rec.bodes, string(b))
	rec.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

func (rec *recorder) last() (*http.Request, string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[len(rec.reqs)-1], rec.bodes[len(rec.bodes)-1]
}

// TestSignerHeaders pins each signer's headers to known answers computed
// outside the package (sha256sum, base64), from the seeds' examples.
func TestSignerHeaders(t *testing.T) {
	sig := must[client.Signer](t)
	at := time.Unix(1764000000, 0)
	clock := func() time.Time { return at }
	for _, c := range []struct {
		name  string
		s     client.Signer
		ctx   context.Context
		body  string
		want  http.Header
		nokey bool // the key must not be sent anywhere
	}{
		{name: "Bearer", s: sig(client.Bearer("sandbox_sk_test_xxxxxxxxxx")),
			want: http.Header{"Authorization": {"Bearer sandbox_sk_test_xxxxxxxxxx"}}},
		{name: "APIKey", s: sig(client.APIKey("x-app-key", "demo-app-key")),
			want: http.Header{"X-App-Key": {"demo-app-key"}}},
		{name: "Basic (Midtrans' example)", s: sig(client.Basic("SB-Mid-server-abc123cde456")),
			want: http.Header{"Authorization": {"Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6"}}},
		{name: "StatusHash", s: sig(client.StatusHash("topup_demo_key_gold")), body: `{"trx_id": "TRX_123456789"}`,
			want:  http.Header{"Authorization": {"Bearer 37c6df5c5e0f209029897e241c216247a8a633ab79abe5369fd342ff0a998038"}},
			nokey: true},
		{name: "StatusHash, escaped trx_id", s: sig(client.StatusHash("topup_demo_key_gold")), body: `{"trx_id":"TRX\u005f123456789"}`,
			want:  http.Header{"Authorization": {"Bearer 37c6df5c5e0f209029897e241c216247a8a633ab79abe5369fd342ff0a998038"}},
			nokey: true},
		{name: "OrderHash", s: sig(client.OrderHash("topup_demo_key_gold", client.WithClock(clock))),
			ctx:  client.WithPrice(context.Background(), 14500),
			body: `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`,
			want: http.Header{
				"Authorization":  {"Bearer d16612179ac3f46683d195cab8940e671c251714eecb3c65f68d7f41d932f5a7"},
				"X-Api-Key":      {"topup_demo_key_gold"},
				"X-Request-Time": {"1764000000"},
			}},
		{name: "JSON field twice", s: sig(client.NewHash("k", []client.Field{client.JSONField("ref_id"), client.JSONField("ref_id")})),
			body: `{"ref_id":"R\u00e9F"}`,
			want: http.Header{"Authorization": {"Bearer " + sha256Hex("kRéFRéF")}}, nokey: true},
		{name: "HMAC, time signed, client named", s: sig(client.NewHMAC("whsec_demo",
			[]client.Field{client.HeaderField("X-Request-Time"), client.QueryField("q"), client.JSONField("ref_id")},
			client.SendTime("X-Request-Time"), client.SendHeader("X-Client-Id", "acme"), client.WithClock(clock))),
			body: `{"ref_id":"REF_1"}`,
			// python3: hmac.new(b"whsec_demo", b"1764000000\nabc\nREF_1", hashlib.sha256).hexdigest()
			want: http.Header{
				"Authorization":  {"Bearer 123f905482a0f955c132eb6ca6b8a0927109bcb5867eba4dac7fbad1c4838422"},
				"X-Request-Time": {"1764000000"},
				"X-Client-Id":    {"acme"},
			}, nokey: true},
		{name: "header and query fields", s: sig(client.NewHash("k", []client.Field{client.HeaderField("x-request-id"), client.QueryField("q")})),
			want: http.Header{"Authorization": {"Bearer " + sha256Hex("kreq-1abc")}, "X-Request-Id": {"req-1"}}, nokey: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			rec := &recorder{}
			req := must[*http.Request](t)(http.NewRequestWithContext(ctx, "POST", "https://api.example/v1?q=abc", strings.NewReader(c.body)))
			req.Header.Set("X-Request-Id", "req-1")
			if _, err := client.Transport(c.s, rec).RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			got, body := rec.last()
			for k, v := range c.want {
				if g := got.Header.Values(k); len(g) != 1 || g[0] != v[0] {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if c.nokey {
				for k, v := range got.Header {
					if all := strings.Join(v, ","); k != "Authorization" && (strings.Contains(all, "topup_demo_key_gold") || strings.Contains(all, "whsec_demo")) {
						t.Errorf("the key was sent in %s", k)
					}
				}
			}
			if body != c.body || got.ContentLength != int64(len(c.body)) {
				t.Errorf("sent body %q (length %d), want %q", body, got.ContentLength, c.body)
			}
			if req.Header.Get("Authorization") != "" || len(req.Header) != 1 {
				t.Errorf("the caller's request was changed: %v", req.Header)
			}
		})
	}
}

// TestHashBodyRestored: a body read for signing is sent byte for byte, can
// be sent again (GetBody), and is read from the caller once.
func TestHashBodyRestored(t *testing.T) {
	s := must[client.Signer](t)(client.StatusHash("k"))
	body := `{"trx_id":"T1","pad":"` + strings.Repeat("é", 3000) + `"}`
	reads := &countingReader{r: strings.NewReader(body)}
	req := must[*http.Request](t)(http.NewRequest("POST", "https://api.example/status", reads))
	rec := &recorder{}
	if _, err := client.Transport(s, rec).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	got, sent := rec.last()
	if sent != body {
		t.Fatal("the body sent differs from the caller's")
	}
	again, _ := io.ReadAll(must[io.ReadCloser](t)(got.GetBody()))
	if string(again) != body {
		t.Error("GetBody does not give the body again")
	}
	if !reads.closed {
		t.Error("the caller's body was not closed")
	}

	// Signing a request in place, as apiguardtest does.
	r := httptest.NewRequest("POST", "/status", strings.NewReader(body))
	if err := s.Sign(r); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != body || r.ContentLength != int64(len(body)) {
		t.Error("Sign did not put the body back")
	}
}

type countingReader struct {
	r      io.Reader
	closed bool
}

func (c *countingReader) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *countingReader) Close() error               { c.closed = true; return nil }

// TestSignFailures: a request that cannot be signed is not sent, its body
// is closed, and the error says why without the key.
func TestSignFailures(t *testing.T) {
	sig := must[client.Signer](t)
	hmacOf := func(name string) client.Signer {
		return sig(client.NewHMAC("secret_key_1", []client.Field{client.JSONField(name)}))
	}
	for _, c := range []struct {
		name    string
		s       client.Signer
		ctx     context.Context
		body    string
		wantErr error
	}{
		{"order without price", sig(client.OrderHash("secret_key_1")), context.Background(), `{"ref_id":"R"}`, nil},
		{"body not JSON", sig(client.StatusHash("secret_key_1")), context.Background(), `trx_id=1`, client.ErrInvalidBody},
		{"body a JSON array", sig(client.StatusHash("secret_key_1")), context.Background(), `["trx_id"]`, client.ErrInvalidBody},
		{"body null", sig(client.StatusHash("secret_key_1")), context.Background(), `null`, client.ErrInvalidBody},
		{"no body", sig(client.StatusHash("secret_key_1")), context.Background(), ``, client.ErrInvalidBody},
		{"trx_id an object", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":{"a":1}}`, client.ErrInvalidBody},
		{"trx_id a boolean", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":true}`, client.ErrInvalidBody},
		{"body over the limit", sig(client.StatusHash("secret_key_1", client.WithBodyLimit(10))), context.Background(), `{"trx_id":"12345"}`, client.ErrBodyTooLarge},
		{"HMAC field with a newline", hmacOf("ref_id"), context.Background(), `{"ref_id":"a\nb"}`, client.ErrFieldValue},
		{"HMAC field with DEL", hmacOf("ref_id"), context.Background(), `{"ref_id":"a\u007f"}`, client.ErrFieldValue},
		{"HMAC field with a C1 control", hmacOf("ref_id"), context.Background(), `{"ref_id":"a\u0085"}`, client.ErrFieldValue},
		{"HMAC body not JSON", hmacOf("ref_id"), context.Background(), `ref_id=1`, client.ErrInvalidBody},
		{"trx_id a number", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":123456789}`, client.ErrInvalidBody},
		{"HMAC ref_id a number", hmacOf("ref_id"), context.Background(), `{"ref_id":1}`, client.ErrInvalidBody},
		{"duplicate trx_id", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":"a","trx_id":"b"}`, client.ErrInvalidBody},
		{"trx_id in another case", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":"a","TRX_ID":"b"}`, client.ErrInvalidBody},
		{"duplicate of another member", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":"a","note":"x","Note":"y"}`, client.ErrInvalidBody},
		{"lone surrogate", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":"\ud800"}`, client.ErrInvalidBody},
		{"hash field with a newline", sig(client.StatusHash("secret_key_1")), context.Background(), `{"trx_id":"a\nb"}`, client.ErrFieldValue},
		{"computed field with a newline", sig(client.NewHash("secret_key_1", []client.Field{client.FieldFunc(func(*http.Request, []byte) (string, error) { return "a\nb", nil })})),
			context.Background(), ``, client.ErrFieldValue},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			body := &countingReader{r: strings.NewReader(c.body)}
			req := must[*http.Request](t)(http.NewRequestWithContext(c.ctx, "POST", "https://api.example/", body))
			_, err := client.Transport(c.s, rec).RoundTrip(req)
			switch {
			case err == nil:
				t.Fatal("no error")
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Errorf("err = %v, want %v", err, c.wantErr)
			case strings.Contains(err.Error(), "secret_key_1"):
				t.Errorf("the error %q shows the key", err)
			}
			if len(rec.reqs) != 0 {
				t.Error("the request was sent")
			}
			if !body.closed {
				t.Error("the body was not closed")
			}
		})
	}
}

// TestHashAbsentField: an absent or null member is hashed as "", so the
// server answers with its own error (the reseller's "Transaction ID is
// required").
func TestHashAbsentField(t *testing.T) {
	s := must[client.Signer](t)(client.StatusHash("k"))
	for _, body := range []string{`{}`, `{"trx_id":null}`, `{"trx_id":""}`} {
		r := httptest.NewRequest("POST", "/status", strings.NewReader(body))
		if err := s.Sign(r); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got, want := r.Header.Get("Authorization"), "Bearer "+sha256Hex("k"); got != want {
			t.Errorf("%s: %s, want %s", body, got, want)
		}
	}
}

// TestSignerConfig: configuration mistakes fail at construction, without
// showing the key.
func TestSignerConfig(t *testing.T) {
	long := strings.Repeat("k", 1025)
	for _, c := range []struct {
		name string
		make func() (client.Signer, error)
	}{
		{"Bearer empty", func() (client.Signer, error) { return client.Bearer("") }},
		{"Bearer space", func() (client.Signer, error) { return client.Bearer("a b") }},
		{"Bearer newline", func() (client.Signer, error) { return client.Bearer("a\r\nX-Evil: 1") }},
		{"Bearer too long", func() (client.Signer, error) { return client.Bearer(long) }},
		{"Bearer non-ASCII", func() (client.Signer, error) { return client.Bearer("kéy") }},
		{"APIKey bad header", func() (client.Signer, error) { return client.APIKey("X API Key", "k") }},
		{"APIKey empty header", func() (client.Signer, error) { return client.APIKey("", "k") }},
		{"APIKey empty key", func() (client.Signer, error) { return client.APIKey("X-API-Key", "") }},
		{"Basic colon", func() (client.Signer, error) { return client.Basic("user:pass") }},
		{"Basic empty", func() (client.Signer, error) { return client.Basic("") }},
		{"Hash no fields", func() (client.Signer, error) { return client.NewHash("k", nil) }},
		{"Hash zero field", func() (client.Signer, error) { return client.NewHash("k", []client.Field{{}}) }},
		{"Hash empty key", func() (client.Signer, error) { return client.StatusHash("") }},
		{"Hash nil clock", func() (client.Signer, error) { return client.OrderHash("k", client.WithClock(nil)) }},
		{"Hash bad SendKey", func() (client.Signer, error) { return client.StatusHash("k", client.SendKey("a:b")) }},
		{"Hash bad SendTime", func() (client.Signer, error) { return client.StatusHash("k", client.SendTime("")) }},
		{"Hash zero option", func() (client.Signer, error) { return client.StatusHash("k", client.Option{}) }},
		{"Hash zero WithBodyLimit", func() (client.Signer, error) { return client.StatusHash("k", client.WithBodyLimit(0)) }},
		{"Hash given a Session's option", func() (client.Signer, error) { return client.StatusHash("k", client.WithTokenMargin(time.Second)) }},
		{"HMAC empty secret", func() (client.Signer, error) { return client.NewHMAC("", []client.Field{client.QueryField("q")}) }},
		{"HMAC no fields", func() (client.Signer, error) { return client.NewHMAC("k", nil) }},
		{"HMAC sending its secret", func() (client.Signer, error) {
			return client.NewHMAC("k", []client.Field{client.QueryField("q")}, client.SendKey("X-API-Key"))
		}},
		{"SendHeader Authorization", func() (client.Signer, error) { return client.StatusHash("k", client.SendHeader("authorization", "x")) }},
		{"SendHeader bad name", func() (client.Signer, error) { return client.StatusHash("k", client.SendHeader("X Client", "x")) }},
		{"SendHeader empty value", func() (client.Signer, error) { return client.StatusHash("k", client.SendHeader("X-Client-Id", "")) }},
		{"SendHeader newline", func() (client.Signer, error) {
			return client.StatusHash("k", client.SendHeader("X-Client-Id", "a\r\nX-Evil: 1"))
		}},
		{"SendHeader C1 control", func() (client.Signer, error) {
			return client.StatusHash("k", client.SendHeader("X-Client-Id", "a\u0085"))
		}},
		{"SendHeader invalid UTF-8", func() (client.Signer, error) {
			return client.StatusHash("k", client.SendHeader("X-Client-Id", "a\xff"))
		}},
		{"SendHeader space around", func() (client.Signer, error) {
			return client.StatusHash("k", client.SendHeader("X-Client-Id", "acme "))
		}},
		{"SendKey Authorization", func() (client.Signer, error) { return client.StatusHash("k", client.SendKey("Authorization")) }},
		{"SendTime not a token", func() (client.Signer, error) { return client.StatusHash("k", client.SendTime("X-Time/UTC")) }},
		{"HeaderField not a token", func() (client.Signer, error) {
			return client.NewHash("k", []client.Field{client.HeaderField("X(Ref)")})
		}},
		{"HeaderField empty", func() (client.Signer, error) { return client.NewHash("k", []client.Field{client.HeaderField("")}) }},
		{"JSONField empty", func() (client.Signer, error) { return client.NewHash("k", []client.Field{client.JSONField("")}) }},
		{"QueryField empty", func() (client.Signer, error) { return client.NewHash("k", []client.Field{client.QueryField("")}) }},
		{"FieldFunc nil", func() (client.Signer, error) { return client.NewHash("k", []client.Field{client.FieldFunc(nil)}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.make()
			if err == nil || s != nil {
				t.Fatalf("got %v, %v; want an error", s, err)
			}
			if strings.Contains(err.Error(), "a\r\n") || strings.Contains(err.Error(), long) {
				t.Errorf("the error %q shows the key", err)
			}
		})
	}
	if _, err := client.Transport(nil, &recorder{}).RoundTrip(httptest.NewRequest("GET", "/", nil)); err == nil {
		t.Error("a Transport without a Signer sent a request")
	}
}

// TestTransportConcurrent signs from many goroutines through one
// Transport (run with -race); each request keeps its own body and headers.
func TestTransportConcurrent(t *testing.T) {
	s := must[client.Signer](t)(client.StatusHash("k"))
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		want := "Bearer " + sha256Hex("k"+bodyString(b, "trx_id"))
		if r.Header.Get("Authorization") != want {
			w.WriteHeader(401)
			return
		}
		n.Add(1)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: client.Transport(s, nil)}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			body := bytes.NewReader([]byte(`{"trx_id":"TRX_` + strings.Repeat("9", i) + `"}`))
			resp, err := hc.Post(srv.URL, "application/json", body)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n.Load() != 50 {
		t.Errorf("%d requests verified, want 50", n.Load())
	}
}
