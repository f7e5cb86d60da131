package client_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/client"
)

// FuzzSignerRoundTrip signs fuzzed requests with the client's hash and
// HMAC signers and checks them with apiguard's HashSignature and
// HMACSignature, after a trip through HTTP/1.1 (written as a client writes
// it, read back as a server reads it). Whatever the body, header and
// query, the two sides draw the line in the same place:
//
//   - a request the client signs, the server admits, with its body byte
//     for byte, unless a signed value is empty, which the client signs as
//     "" so that the server answers with the field's own error;
//   - a request the client refuses to sign (ErrInvalidBody, ErrFieldValue),
//     the server refuses too, even with the signature a careless signer
//     would make of it.
func FuzzSignerRoundTrip(f *testing.F) {
	for _, s := range []struct{ body, ref, q string }{
		{`{"trx_id":"TRX_123456789"}`, "REF_1", "abc"},
		{`{"trx_id":"TRX\u005f1","x":[1,{"trx_id":"no"}]}`, "é", "a b"},
		{`{"trx_id":"a","trx_id":"b"}`, "r", "q"},
		{`{"trx_id":"a","TRX_ID":"b"}`, "r", "q"},
		{`{"TRX_ID":"b"}`, "r", "q"},
		{`{"trx_id":123}`, "r", "q"},
		{`{"trx_id":"\ud800"}`, "r", "q"},
		{`{"trx_id":"\ud83d\ude00 \u00e9 \"q\" \\ \/"}`, "r", "q"},
		{`{"trx_id":"a\nb"}`, "r", "q"},
		{` {"trx_id" : "x" } `, "", ""},
		{`{"trx_id":"x"}`, "r ", "q"},
		{`{"trx_id":"x"}`, " ", "q"},
		{`{"trx_id":"x"}`, "a\u0085", "\xff"},
		{`{}`, "r", "q"},
		{``, "r", "q"},
	} {
		f.Add([]byte(s.body), s.ref, s.q)
	}

	const key = "topup_demo_key_gold"
	keys := mustStore(f, apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "123"}, KeepSecret: true})
	owner := apiguard.SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "123", nil })
	missing := &apiguard.Error{Status: 422, Code: "missing", Message: "missing"}
	fields := []apiguard.Field{apiguard.BodyField("trx_id", missing), apiguard.HeaderField("X-Ref", missing), apiguard.QueryField("q", missing)}
	cfields := []client.Field{client.JSONField("trx_id"), client.HeaderField("X-Ref"), client.QueryField("q")}

	type side struct {
		name   string
		h      http.Handler
		s      client.Signer
		digest func(key string, vals ...string) string
	}
	var denied error
	guard := func(s apiguard.Scheme) http.Handler {
		g := apiguard.MustNew(s, apiguard.WithObserver(func(d apiguard.Decision) {
			if d.Allowed {
				return
			}
			denied = d.Err
		}))
		return g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}))
	}
	sides := []side{
		{"HashSignature", guard(apiguard.HashSignature(owner, fields)), must[client.Signer](f)(client.NewHash(key, cfields)), carelessHash},
		{"HMACSignature", guard(apiguard.HMACSignature(owner, fields)), must[client.Signer](f)(client.NewHMAC(key, cfields)), carelessHMAC},
	}

	f.Fuzz(func(t *testing.T, body []byte, ref, q string) {
		newRequest := func() *http.Request {
			r := httptest.NewRequest("POST", "/status?q="+url.QueryEscape(q), bytes.NewReader(body))
			if ref != "" {
				r.Header.Set("X-Ref", ref)
			}
			return r
		}
		trx := carelessMember(body, "trx_id")
		for _, sd := range sides {
			careless := "Bearer " + sd.digest(key, trx, ref, q)
			r := newRequest()
			err := sd.s.Sign(r)
			switch {
			case err == nil && r.Header.Get("Authorization") != careless:
				t.Fatalf("%s: body %q, X-Ref %q, q %q: the client signs %s, with the values as they stand %s",
					sd.name, body, ref, q, r.Header.Get("Authorization"), careless)
			case err != nil && !errors.Is(err, client.ErrInvalidBody) && !errors.Is(err, client.ErrFieldValue):
				t.Fatalf("%s: body %q, X-Ref %q, q %q: %v", sd.name, body, ref, q, err)
			case err != nil:
				r = newRequest()
				r.Header.Set("Authorization", careless)
			}

			sent, rerr := overTheWire(r)
			if rerr != nil {
				if err == nil {
					t.Fatalf("%s: body %q, X-Ref %q, q %q: the client signs what HTTP does not carry: %v", sd.name, body, ref, q, rerr)
				}
				continue // net/http's server answers 400
			}
			denied = nil
			w := httptest.NewRecorder()
			sd.h.ServeHTTP(w, sent)
			switch {
			case err != nil && w.Code == 200:
				t.Fatalf("%s: body %q, X-Ref %q, q %q: the client refuses (%v), the server admits it", sd.name, body, ref, q, err)
			case err == nil && w.Code == 200 && !bytes.Equal(w.Body.Bytes(), body):
				t.Fatalf("%s: the handler got %q, want %q", sd.name, w.Body.Bytes(), body)
			case err == nil && w.Code != 200 && !(w.Code == 422 && (trx == "" || ref == "" || q == "")):
				t.Fatalf("%s: body %q, X-Ref %q, q %q: the client signs it, the server refuses it: %d %v", sd.name, body, ref, q, w.Code, denied)
			}
		}
	})
}

// overTheWire returns r as a server reads it after a trip through
// HTTP/1.1: written as a client writes it, and read back.
func overTheWire(r *http.Request) (*http.Request, error) {
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		return nil, err
	}
	sent, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		return nil, err
	}
	sent.RemoteAddr = r.RemoteAddr
	return sent, nil
}

// carelessMember is the value a signer without the wire rules would sign
// for the member name of body: the one encoding/json keeps, a string's
// value or another value as written; "" when there is none.
func carelessMember(body []byte, name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
