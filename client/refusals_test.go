package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/client"
)

// carelessHash and carelessHMAC are the signatures a signer without the
// wire rules would make: the key and the values as they stand.
func carelessHash(key string, vals ...string) string {
	return sha256Hex(key + strings.Join(vals, ""))
}

func carelessHMAC(key string, vals ...string) string {
	m := hmac.New(sha256.New, []byte(key))
	io.WriteString(m, strings.Join(vals, "\n"))
	return hex.EncodeToString(m.Sum(nil))
}

// TestRefusalsMatch: each request the client refuses to sign, the server
// refuses too, with its documented answer, even when it carries the
// signature a careless signer would make of it (numbers as written, the
// member encoding/json keeps, the values as they stand). The requests
// travel over a real connection, so that what HTTP does on the way counts:
// a header value loses the spaces around it.
func TestRefusalsMatch(t *testing.T) {
	const key = "topup_demo_key_gold"
	keys := mustStore(t, apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "123"}, KeepSecret: true})
	owner := apiguard.SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "123", nil })
	fields := []apiguard.Field{apiguard.BodyField("trx_id", errTrxRequired), apiguard.HeaderField("X-Ref", nil), apiguard.QueryField("q", nil)}
	cfields := []client.Field{client.JSONField("trx_id"), client.HeaderField("X-Ref"), client.QueryField("q")}
	type side struct {
		name   string
		srv    *httptest.Server
		s      client.Signer
		digest func(key string, vals ...string) string
		answer func(status int, msg string) string // the dialect's body
	}
	newSide := func(name string, s apiguard.Scheme, d apiguard.Dialect, sg client.Signer, digest func(string, ...string) string, answer func(int, string) string) side {
		srv := httptest.NewServer(apiguard.MustNew(s, apiguard.WithDialect(d)).Authenticate()(echoHandler))
		t.Cleanup(srv.Close)
		return side{name, srv, sg, digest, answer}
	}
	sides := []side{
		newSide("HashSignature", apiguard.HashSignature(owner, fields), apiguard.Reseller(),
			must[client.Signer](t)(client.NewHash(key, cfields)), carelessHash,
			func(status int, msg string) string {
				return fmt.Sprintf(`{"status":"error","message":%q,"code":%d}`, msg, status)
			}),
		newSide("HMACSignature", apiguard.HMACSignature(owner, fields), apiguard.MockPay(),
			must[client.Signer](t)(client.NewHMAC(key, cfields)), carelessHMAC,
			func(status int, msg string) string {
				code := map[int]string{400: "BAD_REQUEST", 401: "UNAUTHORIZED"}[status]
				return fmt.Sprintf(`{"success":false,"error":{"code":%q,"message":%q}}`, code, msg)
			}),
	}

	const (
		badBody  = "Invalid request body"
		badField = "Missing or invalid field"
		mismatch = "Invalid hash combination"
	)
	deep := strings.Repeat("[", 512) + strings.Repeat("]", 512)
	for _, c := range []struct {
		name    string
		body    string
		refs    []string // X-Ref headers
		query   string   // the raw query
		signed  []string // what a careless signer signs: trx_id, X-Ref, q
		wantErr error    // the client's refusal; nil: it signs
		status  int      // the server's answer
		msg     string
	}{
		{"signed", `{"trx_id":"TRX_123456789"}`, []string{"REF_1"}, "q=abc", []string{"TRX_123456789", "REF_1", "abc"}, nil, 200, ""},
		{"trx_id a number", `{"trx_id":123456789}`, []string{"REF_1"}, "q=abc", []string{"123456789", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"trx_id an object", `{"trx_id":{"id":"TRX_1"}}`, []string{"REF_1"}, "q=abc", []string{`{"id":"TRX_1"}`, "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"trx_id a boolean", `{"trx_id":true}`, []string{"REF_1"}, "q=abc", []string{"true", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"duplicate trx_id", `{"trx_id":"TRX_1","trx_id":"TRX_2"}`, []string{"REF_1"}, "q=abc", []string{"TRX_2", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"trx_id again in another case", `{"trx_id":"TRX_1","TRX_ID":"TRX_2"}`, []string{"REF_1"}, "q=abc", []string{"TRX_1", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"trx_id again escaped", `{"trx_id":"TRX_1","trx\u005fid":"TRX_2"}`, []string{"REF_1"}, "q=abc", []string{"TRX_2", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"another member again, Kelvin sign", "{\"trx_id\":\"TRX_1\",\"kind\":\"a\",\"\u212aind\":\"b\"}", []string{"REF_1"}, "q=abc", []string{"TRX_1", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"lone surrogate", `{"trx_id":"TRX_\ud800"}`, []string{"REF_1"}, "q=abc", []string{"TRX_\ufffd", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"invalid UTF-8", "{\"trx_id\":\"TRX_\xff\"}", []string{"REF_1"}, "q=abc", []string{"TRX_\xff", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"nested too deep", `{"trx_id":"TRX_1","x":` + deep + `}`, []string{"REF_1"}, "q=abc", []string{"TRX_1", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"body an array", `["TRX_1"]`, []string{"REF_1"}, "q=abc", []string{"", "REF_1", "abc"}, client.ErrInvalidBody, 400, badBody},
		{"trx_id with a newline", `{"trx_id":"TRX\n1"}`, []string{"REF_1"}, "q=abc", []string{"TRX\n1", "REF_1", "abc"}, client.ErrFieldValue, 400, badField},
		{"X-Ref with a C1 control", `{"trx_id":"TRX_1"}`, []string{"REF\u0085"}, "q=abc", []string{"TRX_1", "REF\u0085", "abc"}, client.ErrFieldValue, 400, badField},
		{"X-Ref not UTF-8", `{"trx_id":"TRX_1"}`, []string{"REF\xff"}, "q=abc", []string{"TRX_1", "REF\xff", "abc"}, client.ErrFieldValue, 400, badField},
		{"X-Ref twice", `{"trx_id":"TRX_1"}`, []string{"REF_1", "REF_2"}, "q=abc", []string{"TRX_1", "REF_1", "abc"}, client.ErrFieldValue, 400, badField},
		{"q twice", `{"trx_id":"TRX_1"}`, []string{"REF_1"}, "q=abc&q=def", []string{"TRX_1", "REF_1", "abc"}, client.ErrFieldValue, 400, badField},
		{"query that does not parse", `{"trx_id":"TRX_1"}`, []string{"REF_1"}, "q=%zz", []string{"TRX_1", "REF_1", "%zz"}, client.ErrFieldValue, 400, badField},
		{"q with a newline", `{"trx_id":"TRX_1"}`, []string{"REF_1"}, "q=a%0Ab", []string{"TRX_1", "REF_1", "a\nb"}, client.ErrFieldValue, 400, badField},
		// HTTP drops the spaces around a header value: the server checks
		// the signature of "REF_1".
		{"X-Ref with a space after", `{"trx_id":"TRX_1"}`, []string{"REF_1 "}, "q=abc", []string{"TRX_1", "REF_1 ", "abc"}, client.ErrFieldValue, 401, mismatch},
		{"X-Ref with a space before", `{"trx_id":"TRX_1"}`, []string{" REF_1"}, "q=abc", []string{"TRX_1", " REF_1", "abc"}, client.ErrFieldValue, 401, mismatch},
	} {
		for _, sd := range sides {
			t.Run(c.name+"/"+sd.name, func(t *testing.T) {
				newRequest := func() *http.Request {
					r := must[*http.Request](t)(http.NewRequest("POST", sd.srv.URL+"/?"+c.query, strings.NewReader(c.body)))
					for _, v := range c.refs {
						r.Header.Add("X-Ref", v)
					}
					return r
				}
				careless := "Bearer " + sd.digest(key, c.signed...)
				r := newRequest()
				err := sd.s.Sign(r)
				switch {
				case c.wantErr == nil && err != nil:
					t.Fatalf("the client refuses: %v", err)
				case c.wantErr == nil && r.Header.Get("Authorization") != careless:
					t.Fatalf("the client signs %s, the careless signer %s", r.Header.Get("Authorization"), careless)
				case c.wantErr != nil && !errors.Is(err, c.wantErr):
					t.Fatalf("the client says %v, want %v", err, c.wantErr)
				}

				r = newRequest()
				r.Header.Set("Authorization", careless)
				resp, err := sd.srv.Client().Do(r)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || c.status != 200 && !jsonEqual(t, string(b), sd.answer(c.status, c.msg)) {
					t.Errorf("the server answers %d %s; want %d %s", resp.StatusCode, b, c.status, sd.answer(c.status, c.msg))
				}
			})
		}
	}
}

// TestCredentialRefusalsMatch: a credential over 1024 bytes, which the
// client refuses to send, is refused by the server even when its store
// holds it; one of 1024 bytes goes through.
func TestCredentialRefusalsMatch(t *testing.T) {
	long, longest := strings.Repeat("k", 1025), strings.Repeat("k", 1024)
	keys := mustStore(t,
		apiguard.KeySpec{Key: long, Client: apiguard.Client{ID: "long"}},
		apiguard.KeySpec{Key: longest, Client: apiguard.Client{ID: "longest"}})
	for _, c := range []struct {
		name   string
		scheme apiguard.Scheme
		d      apiguard.Dialect
		signer func(key string) (client.Signer, error)
		send   func(r *http.Request, key string) // as a careless signer would
		body   string                            // the server's 401
	}{
		{"Bearer", apiguard.Bearer(keys), apiguard.MockPay(), client.Bearer,
			func(r *http.Request, key string) { r.Header.Set("Authorization", "Bearer "+key) },
			`{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`},
		{"APIKey", apiguard.Bearer(keys, "X-API-Key"), apiguard.Reseller(),
			func(key string) (client.Signer, error) { return client.APIKey("X-API-Key", key) },
			func(r *http.Request, key string) { r.Header.Set("X-API-Key", key) },
			`{"status":"error","message":"Invalid API key","code":401}`},
		{"Basic", apiguard.Basic(keys), apiguard.Midtrans(), client.Basic,
			func(r *http.Request, key string) { r.SetBasicAuth(key, "") },
			`{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(apiguard.MustNew(c.scheme, apiguard.WithDialect(c.d)).Authenticate()(echoHandler))
			defer srv.Close()
			if s, err := c.signer(long); err == nil {
				t.Fatalf("the client signs with a key of %d bytes: %v", len(long), s)
			}
			r := must[*http.Request](t)(http.NewRequest("GET", srv.URL, nil))
			c.send(r, long)
			resp := must[*http.Response](t)(srv.Client().Do(r))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || !jsonEqual(t, string(b), c.body) {
				t.Errorf("a stored key of %d bytes: %d %s; want 401 %s", len(long), resp.StatusCode, b, c.body)
			}

			s := must[client.Signer](t)(c.signer(longest))
			resp = must[*http.Response](t)((&http.Client{Transport: client.Transport(s, nil)}).Get(srv.URL))
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"client":"longest"`) {
				t.Errorf("a key of %d bytes: %d %s", len(longest), resp.StatusCode, b)
			}
		})
	}
}

// TestHeaderNameRefusalsMatch: the client refuses a header name exactly
// when the server's configuration does.
func TestHeaderNameRefusalsMatch(t *testing.T) {
	keys := mustStore(t)
	owner := apiguard.SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "", nil })
	body := []apiguard.Field{apiguard.BodyField("trx_id", nil)}
	for _, name := range []string{"X-API-Key", "x_ref.v2", "!#$%&'*+-.^_`|~", "Authorization",
		"", "X API Key", "a:b", "X(Ref)", "X/Ref", "X-Ref\n", "X-Ref\t", "Ünï", `"X"`} {
		for _, p := range []struct {
			what   string
			client func() (client.Signer, error)
			server apiguard.Scheme
		}{
			{"APIKey and Bearer", func() (client.Signer, error) { return client.APIKey(name, "k") }, apiguard.Bearer(keys, name)},
			{"HeaderField", func() (client.Signer, error) { return client.NewHash("k", []client.Field{client.HeaderField(name)}) },
				apiguard.HashSignature(owner, []apiguard.Field{apiguard.HeaderField(name, nil)})},
			{"SendKey and KeyHeader", func() (client.Signer, error) { return client.StatusHash("k", client.SendKey(name)) },
				apiguard.HashSignature(apiguard.SignerFromHeader(keys, name), body)},
		} {
			_, cerr := p.client()
			_, serr := apiguard.New(p.server)
			if (cerr == nil) != (serr == nil) {
				t.Errorf("%s %q: the client says %v, the server %v", p.what, name, cerr, serr)
			}
		}
	}
}
