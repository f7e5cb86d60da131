package client_test

import (
	"bytes"
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
// HMACSignature: whatever the body, header and query, a request the client
// signs is never refused as a hash mismatch. The server may refuse what it
// does not take (a body that is not I-JSON, a number where it wants a
// string, a control character), but the two sides never read one request
// differently. A request the server admits reaches the handler with its
// body byte for byte.
func FuzzSignerRoundTrip(f *testing.F) {
	for _, s := range []struct{ body, ref, q string }{
		{`{"trx_id":"TRX_123456789"}`, "REF_1", "abc"},
		{`{"trx_id":"TRX\u005f1","x":[1,{"trx_id":"no"}]}`, "é", "a b"},
		{`{"trx_id":"a","trx_id":"b"}`, "r", "q"},
		{`{"trx_id":"a","TRX_ID":"b"}`, "r", "q"},
		{`{"trx_id":123}`, "r", "q"},
		{`{"trx_id":"\ud800"}`, "r", "q"},
		{`{"trx_id":"\ud83d\ude00 \u00e9 \"q\" \\ \/"}`, "r", "q"},
		{`{"trx_id":"a\nb"}`, "r", "q"},
		{` {"trx_id" : "x" } `, "", ""},
		{`{}`, "r", "q"},
		{``, "r", "q"},
	} {
		f.Add([]byte(s.body), s.ref, s.q)
	}

	keys := mustStore(f, apiguard.KeySpec{Key: "topup_demo_key_gold", Client: apiguard.Client{ID: "123"}, KeepSecret: true})
	owner := apiguard.SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "123", nil })
	missing := &apiguard.Error{Status: 422, Code: "missing", Message: "missing"}
	fields := []apiguard.Field{apiguard.BodyField("trx_id", missing), apiguard.HeaderField("X-Ref", missing), apiguard.QueryField("q", missing)}
	cfields := []client.Field{client.JSONField("trx_id"), client.HeaderField("X-Ref"), client.QueryField("q")}

	type side struct {
		name string
		h    http.Handler
		s    client.Signer
	}
	var mismatch error
	guard := func(s apiguard.Scheme) http.Handler {
		g := apiguard.MustNew(s, apiguard.WithDenyHook(func(d apiguard.Denial) {
			if errors.Is(d.Err, apiguard.ErrHashMismatch) {
				mismatch = d.Err
			}
		}))
		return g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}))
	}
	sides := []side{
		{"HashSignature", guard(apiguard.HashSignature(owner, fields)), must[client.Signer](f)(client.NewHash("topup_demo_key_gold", cfields))},
		{"HMACSignature", guard(apiguard.HMACSignature(owner, fields)), must[client.Signer](f)(client.NewHMAC("topup_demo_key_gold", cfields))},
	}

	f.Fuzz(func(t *testing.T, body []byte, ref, q string) {
		for _, sd := range sides {
			r := httptest.NewRequest("POST", "/status?q="+url.QueryEscape(q), bytes.NewReader(body))
			if ref != "" {
				r.Header.Set("X-Ref", ref)
			}
			if err := sd.s.Sign(r); err != nil {
				continue // the client refuses to sign it
			}
			mismatch = nil
			w := httptest.NewRecorder()
			sd.h.ServeHTTP(w, r)
			if mismatch != nil {
				t.Fatalf("%s: body %q, X-Ref %q, q %q: the client signed it, the server computes another digest", sd.name, body, ref, q)
			}
			if w.Code == 200 && !bytes.Equal(w.Body.Bytes(), body) {
				t.Fatalf("%s: the handler got %q, want %q", sd.name, w.Body.Bytes(), body)
			}
		}
	})
}
