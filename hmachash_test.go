package apiguard

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reseller of seed 001, as the demo serves it.
const (
	goldKey    = "topup_demo_key_gold"
	regularKey = "topup_demo_key_ipbound"
)

var (
	errTrxRequired  = &Error{Status: 400, Code: "trx_id_required", Message: "Transaction ID is required"}
	errTrxNotFound  = &Error{Status: 404, Code: "trx_not_found", Message: "Transaction not found"}
	errProdNotFound = &Error{Status: 404, Code: "product_not_found", Message: "Product not found"}
	errProdOff      = &Error{Status: 400, Code: "product_unavailable", Message: "Product is not available"}
)

func resellerStore(t testing.TB) *MemoryKeyStore {
	return mustStore(t,
		KeySpec{Key: goldKey, Client: Client{ID: "123", KeyID: "k-gold", Role: "gold", Scopes: []string{"order"}}, KeepSecret: true},
		KeySpec{Key: regularKey, Client: Client{ID: "456", KeyID: "k-regular", Role: "regular"}, KeepSecret: true},
	)
}

// trxOwner finds the owner of the transaction the status route names.
func trxOwner(_ *http.Request, f []string) (string, error) {
	switch f[0] {
	case "TRX_123456789":
		return "123", nil
	case "TRX_OF_456":
		return "456", nil
	case "TRX_NOBODY":
		return "789", nil // a user without a key
	}
	return "", errTrxNotFound
}

// price is the order route's computed field: the product's price for the
// caller's role, read from the body the handler will get too.
func price(r *http.Request, c *Client) (string, error) {
	var req struct {
		ProdukID string `json:"produk_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return "", ErrInvalidBody
	}
	p := map[string][2]int{"1": {15000, 14500}, "2": {16000, 15500}, "3": {12000, 11500}}[req.ProdukID]
	switch {
	case p[0] == 0:
		return "", errProdNotFound
	case req.ProdukID == "3":
		return "", errProdOff
	case c.Role == "gold":
		return strconv.Itoa(p[1]), nil
	}
	return strconv.Itoa(p[0]), nil
}

func statusGuard(t testing.TB, keys KeyStore, opts ...Option) *Guard {
	t.Helper()
	g, err := New(HashSignature(SignerFromOwner(keys, trxOwner), []Field{BodyField("trx_id", errTrxRequired)}, opts...),
		WithDialect(Reseller()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func orderGuard(t testing.TB, keys KeyStore) *Guard {
	t.Helper()
	g, err := New(HashSignature(SignerFromHeader(keys, "X-API-Key"), []Field{BodyField("ref_id", nil), ComputedField(price)},
		WithRequiredHeaders("X-Request-Time")), WithDialect(Reseller()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// seedHash is the seed's hash: hex(SHA256(key + fields...)).
func seedHash(key string, fields ...string) string {
	d := sha256.Sum256([]byte(key + strings.Join(fields, "")))
	return hex.EncodeToString(d[:])
}

// newReq builds a POST with body and headers given as name, value pairs.
func newReq(body string, headers ...string) *http.Request {
	r := httptest.NewRequest("POST", "/topup", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// echo answers 200 with the client id and the body it read, twice (once
// through GetBody), with its length.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", 500)
		return
	}
	if r.GetBody != nil {
		rc, _ := r.GetBody()
		again, _ := io.ReadAll(rc)
		if !bytes.Equal(again, b) {
			http.Error(w, "GetBody differs", 500)
			return
		}
	}
	if c, ok := ClientFrom(r.Context()); ok {
		w.Header().Set("X-Client", c.ID)
		w.Header().Set("X-Key-Id", c.KeyID)
	}
	w.Header().Set("X-Length", strconv.FormatInt(r.ContentLength, 10))
	w.Write(b)
})

func reseller(status int, msg string) string {
	b, _ := json.Marshal(map[string]any{"status": "error", "message": msg, "code": status})
	return string(b)
}

// TestStatusSeedRows covers every row of seed 001's status check that
// authentication decides, and the route's own 400 and 404.
func TestStatusSeedRows(t *testing.T) {
	g := statusGuard(t, resellerStore(t))
	h := g.Authenticate()(echo)
	good := seedHash(goldKey, "TRX_123456789")
	body := `{"trx_id":"TRX_123456789"}`
	tests := []struct {
		name   string
		req    *http.Request
		status int
		msg    string // "" for 200
		client string
	}{
		{"ok lower-case hex", newReq(body, "Authorization", "Bearer "+good), 200, "", "123"},
		{"ok upper-case hex", newReq(body, "Authorization", "Bearer "+strings.ToUpper(good)), 200, "", "123"},
		{"ok bearer in any case, spaces", newReq(body, "Authorization", "bEaReR   "+good), 200, "", "123"},
		{"other user's transaction with its key", newReq(`{"trx_id":"TRX_OF_456"}`, "Authorization", "Bearer "+seedHash(regularKey, "TRX_OF_456")), 200, "", "456"},
		{"no trx_id", newReq(`{}`, "Authorization", "Bearer "+good), 400, "Transaction ID is required", ""},
		{"empty trx_id", newReq(`{"trx_id":""}`, "Authorization", "Bearer "+good), 400, "Transaction ID is required", ""},
		{"null trx_id", newReq(`{"trx_id":null}`, "Authorization", "Bearer "+good), 400, "Transaction ID is required", ""},
		{"empty body", newReq(``, "Authorization", "Bearer "+good), 400, "Transaction ID is required", ""},
		{"unknown transaction", newReq(`{"trx_id":"TRX_000"}`, "Authorization", "Bearer "+seedHash(goldKey, "TRX_000")), 404, "Transaction not found", ""},
		{"no Authorization", newReq(body), 401, "Unauthorized", ""},
		{"empty Authorization", newReq(body, "Authorization", ""), 401, "Unauthorized", ""},
		{"Bearer without digest", newReq(body, "Authorization", "Bearer"), 401, "Unauthorized", ""},
		{"Basic scheme", newReq(body, "Authorization", "Basic "+good), 401, "Unauthorized", ""},
		{"bare digest", newReq(body, "Authorization", good), 401, "Unauthorized", ""},
		{"two Authorization headers", newReq(body, "Authorization", "Bearer "+good, "Authorization", "Bearer "+good), 401, "Unauthorized", ""},
		{"digest with another user's key", newReq(body, "Authorization", "Bearer "+seedHash(regularKey, "TRX_123456789")), 401, "Invalid hash combination", ""},
		{"digest over another trx_id", newReq(body, "Authorization", "Bearer "+seedHash(goldKey, "TRX_OF_456")), 401, "Invalid hash combination", ""},
		{"digest of the key alone", newReq(body, "Authorization", "Bearer "+seedHash(goldKey)), 401, "Invalid hash combination", ""},
		{"the key itself", newReq(body, "Authorization", "Bearer "+goldKey), 401, "Invalid hash combination", ""},
		{"digest too short", newReq(body, "Authorization", "Bearer "+good[:62]), 401, "Invalid hash combination", ""},
		{"digest too long", newReq(body, "Authorization", "Bearer "+good+"00"), 401, "Invalid hash combination", ""},
		{"digest not hex", newReq(body, "Authorization", "Bearer "+good[:63]+"g"), 401, "Invalid hash combination", ""},
		{"owner without a key", newReq(`{"trx_id":"TRX_NOBODY"}`, "Authorization", "Bearer "+seedHash(goldKey, "TRX_NOBODY")), 401, "Invalid hash combination", ""},
		{"malformed JSON", newReq(`{"trx_id":"TRX_123456789"`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"not an object", newReq(`["TRX_123456789"]`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"trx_id a number", newReq(`{"trx_id":123456789}`, "Authorization", "Bearer "+seedHash(goldKey, "123456789")), 400, "Invalid request body", ""},
		{"trx_id an object", newReq(`{"trx_id":{"id":"TRX_123456789"}}`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"duplicate trx_id", newReq(`{"trx_id":"TRX_123456789","trx_id":"TRX_OF_456"}`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"duplicate in another case", newReq(`{"trx_id":"TRX_123456789","TRX_ID":"TRX_OF_456"}`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"duplicate escaped", newReq(`{"trx_id":"TRX_123456789","trx\u005fid":"TRX_OF_456"}`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"duplicate of another member", newReq(`{"trx_id":"TRX_123456789","note":"a","Note":"b"}`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"trailing garbage", newReq(body+`x`, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"two objects", newReq(body+body, "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"invalid UTF-8", newReq("{\"trx_id\":\"TRX_123456789\",\"n\":\"\xff\"}", "Authorization", "Bearer "+good), 400, "Invalid request body", ""},
		{"NUL in trx_id", newReq(`{"trx_id":"TRX_123456789\u0000"}`, "Authorization", "Bearer "+seedHash(goldKey, "TRX_123456789\x00")), 400, "Missing or invalid field", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.req)
			if tc.status != 200 {
				wantBody(t, w, tc.status, reseller(tc.status, tc.msg))
				if tc.status == 401 && w.Header().Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
				}
				return
			}
			if w.Code != 200 || w.Header().Get("X-Client") != tc.client {
				t.Fatalf("status %d client %q, want 200 %q (body %s)", w.Code, w.Header().Get("X-Client"), tc.client, w.Body)
			}
		})
	}
	// The escaped value is the value: "TRX\u005f123456789" is "TRX_123456789".
	w := serve(h, newReq(`{"trx_id":"TRX\u005f123456789"}`, "Authorization", "Bearer "+good))
	if w.Code != 200 || w.Body.String() != `{"trx_id":"TRX\u005f123456789"}` {
		t.Errorf("escaped trx_id: %d %s", w.Code, w.Body)
	}
}

// TestOrderSeedRows covers the order route's rows that the hash signature
// decides, its three headers missing in every combination, and the body
// the handler gets.
func TestOrderSeedRows(t *testing.T) {
	g := orderGuard(t, resellerStore(t))
	h := g.Authenticate()(echo)
	body := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`
	good := seedHash(goldKey, "REF_123456789", "14500")
	headers := map[string]string{"Authorization": "Bearer " + good, "X-API-Key": goldKey, "X-Request-Time": "1763805600"}
	names := []string{"Authorization", "X-API-Key", "X-Request-Time"}
	for mask := 1; mask < 8; mask++ {
		var missing []string
		r := newReq(body)
		for i, n := range names {
			if mask&(1<<i) != 0 {
				missing = append(missing, n)
			} else {
				r.Header.Set(n, headers[n])
			}
		}
		t.Run("missing "+strings.Join(missing, "+"), func(t *testing.T) {
			wantBody(t, serve(h, r), 401, reseller(401, "Unauthorized: Missing required headers"))
		})
	}
	with := func(body string, kv ...string) *http.Request {
		r := newReq(body)
		for _, n := range names {
			r.Header.Set(n, headers[n])
		}
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	tests := []struct {
		name   string
		req    *http.Request
		status int
		msg    string
	}{
		{"ok gold price", with(body), 200, ""},
		{"ok regular price", with(body, "X-API-Key", regularKey, "Authorization", "Bearer "+seedHash(regularKey, "REF_123456789", "15000")), 200, ""},
		{"ok upper-case hex", with(body, "Authorization", "Bearer "+strings.ToUpper(good)), 200, ""},
		{"empty X-Request-Time", with(body, "X-Request-Time", ""), 401, "Unauthorized: Missing required headers"},
		{"unknown API key", with(body, "X-API-Key", "topup_unknown"), 401, "Invalid API key"},
		{"malformed API key", with(body, "X-API-Key", "a b"), 401, "Invalid API key"},
		{"two API keys", func() *http.Request { r := with(body); r.Header.Add("X-API-Key", goldKey); return r }(), 401, "Invalid API key"},
		{"other scheme", with(body, "Authorization", "Token "+good), 401, "Unauthorized"},
		{"digest with another user's key", with(body, "Authorization", "Bearer "+seedHash(regularKey, "REF_123456789", "14500")), 401, "Invalid hash combination"},
		{"digest at the regular price", with(body, "Authorization", "Bearer "+seedHash(goldKey, "REF_123456789", "15000")), 401, "Invalid hash combination"},
		{"digest over another ref_id", with(body, "Authorization", "Bearer "+seedHash(goldKey, "REF_1", "14500")), 401, "Invalid hash combination"},
		{"digest wrong length", with(body, "Authorization", "Bearer abcd"), 401, "Invalid hash combination"},
		{"product not found", with(`{"produk_id":"9","ref_id":"REF_1"}`, "Authorization", "Bearer "+seedHash(goldKey, "REF_1", "")), 404, "Product not found"},
		{"product not available", with(`{"produk_id":"3","ref_id":"REF_1"}`), 400, "Product is not available"},
		{"no ref_id", with(`{"produk_id":"1"}`), 400, "Missing or invalid field"},
		{"ref_id a number", with(`{"produk_id":"1","ref_id":123}`), 400, "Invalid request body"},
		{"ref_id twice", with(`{"produk_id":"1","ref_id":"REF_123456789","ref_id":"REF_2"}`), 400, "Invalid request body"},
		{"Ref_Id beside ref_id", with(`{"produk_id":"1","Ref_Id":"REF_2","ref_id":"REF_123456789"}`), 400, "Invalid request body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.req)
			if tc.status != 200 {
				wantBody(t, w, tc.status, reseller(tc.status, tc.msg))
				return
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
	// The handler re-reads the body and gets it whole: same bytes, same
	// length, GetBody too (echo checks it), though the price function read
	// it first.
	w := serve(h, with(body))
	if w.Code != 200 || w.Body.String() != body || w.Header().Get("X-Length") != strconv.Itoa(len(body)) || w.Header().Get("X-Client") != "123" {
		t.Errorf("handler got %d %q length %s client %s", w.Code, w.Body, w.Header().Get("X-Length"), w.Header().Get("X-Client"))
	}
}

// TestBodyLimit: a body at the limit passes whole; one byte more is 413,
// announced or not, and so is one an outer http.MaxBytesHandler cuts.
func TestBodyLimit(t *testing.T) {
	const limit = 128
	g := statusGuard(t, resellerStore(t), WithBodyLimit(limit))
	h := g.Authenticate()(echo)
	auth := "Bearer " + seedHash(goldKey, "TRX_123456789")
	pad := func(n int) string {
		b := `{"trx_id":"TRX_123456789","pad":"`
		return b + strings.Repeat("x", n-len(b)-2) + `"}`
	}
	at, over := pad(limit), pad(limit+1)
	unannounced := func(body string) *http.Request {
		r := newReq("", "Authorization", auth)
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = -1
		return r
	}
	for _, tc := range []struct {
		name   string
		h      http.Handler
		req    *http.Request
		status int
		body   string
	}{
		{"at limit", h, newReq(at, "Authorization", auth), 200, at},
		{"at limit, length unknown", h, unannounced(at), 200, at},
		{"over limit", h, newReq(over, "Authorization", auth), 413, reseller(413, "Request body too large")},
		{"over limit, length unknown", h, unannounced(over), 413, reseller(413, "Request body too large")},
		{"cut by MaxBytesHandler", http.MaxBytesHandler(h, 64), unannounced(at), 413, reseller(413, "Request body too large")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.h, tc.req)
			if tc.status == 200 {
				if w.Code != 200 || w.Body.String() != tc.body || w.Header().Get("X-Length") != strconv.Itoa(len(tc.body)) {
					t.Errorf("got %d %q length %s", w.Code, w.Body, w.Header().Get("X-Length"))
				}
				return
			}
			wantBody(t, w, tc.status, tc.body)
		})
	}
	// A large body is read whole (several reads) and handed on intact.
	big := pad(300 << 10)
	g = statusGuard(t, resellerStore(t))
	w := serve(g.Authenticate()(echo), unannounced(big))
	if w.Code != 200 || w.Body.String() != big {
		t.Errorf("300 KiB body: status %d, %d bytes back", w.Code, w.Body.Len())
	}
}

// TestRotationOverlap: while a client has two live secrets, digests made
// with either pass and name the key that matched; once the old one
// expires, its digests fail.
func TestRotationOverlap(t *testing.T) {
	clock := newTestClock()
	keys, _ := NewMemoryKeyStore(WithClock(clock.Now))
	for _, sp := range []KeySpec{
		{Key: "old_secret", Client: Client{ID: "123", KeyID: "k-old"}, KeepSecret: true},
		{Key: "new_secret", Client: Client{ID: "123", KeyID: "k-new"}, KeepSecret: true},
		{Key: "unkept_key", Client: Client{ID: "123", KeyID: "k-unkept"}},
		{Key: "client_key", Client: Client{ID: "123", KeyID: "k-pub", Publishable: true}, KeepSecret: true},
	} {
		if err := keys.Add(sp); err != nil {
			t.Fatal(err)
		}
	}
	h := statusGuard(t, keys).Authenticate()(echo)
	try := func(key string) (int, string) {
		w := serve(h, newReq(`{"trx_id":"TRX_123456789"}`, "Authorization", "Bearer "+seedHash(key, "TRX_123456789")))
		return w.Code, w.Header().Get("X-Key-Id")
	}
	for _, tc := range []struct {
		key    string
		status int
		keyID  string
	}{{"old_secret", 200, "k-old"}, {"new_secret", 200, "k-new"}, {"unkept_key", 401, ""}, {"client_key", 401, ""}} {
		if code, kid := try(tc.key); code != tc.status || kid != tc.keyID {
			t.Errorf("%s during overlap: %d %q, want %d %q", tc.key, code, kid, tc.status, tc.keyID)
		}
	}
	keys.Revoke("k-old", clock.Now().Add(24*time.Hour))
	clock.Advance(24 * time.Hour)
	if code, _ := try("old_secret"); code != 401 {
		t.Errorf("expired key: %d", code)
	}
	if code, kid := try("new_secret"); code != 200 || kid != "k-new" {
		t.Errorf("new key after overlap: %d %q", code, kid)
	}
}

// TestHMAC checks the HMAC mode against crypto/hmac computed here, and that
// the concatenation's ambiguity and the seed's digest do not pass it.
func TestHMAC(t *testing.T) {
	keys := resellerStore(t)
	byHeader := func(r *http.Request, _ []string) (string, error) { return r.Header.Get("X-Client-Id"), nil }
	g := MustNew(HMACSignature(SignerFromOwner(keys, byHeader),
		[]Field{HeaderField("X-Request-Time", nil), PathField("id", nil), QueryField("currency", nil), BodyField("ref_id", nil)}),
		WithDialect(Reseller()))
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}", g.Authenticate()(echo))
	mac := func(key string, fields ...string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(strings.Join(fields, "\n")))
		return hex.EncodeToString(m.Sum(nil))
	}
	good := mac(goldKey, "1763805600", "ord-1", "IDR", "REF_1")
	req := func(path, auth string) *http.Request {
		r := httptest.NewRequest("POST", path, strings.NewReader(`{"ref_id":"REF_1"}`))
		r.Header.Set("X-Client-Id", "123")
		r.Header.Set("X-Request-Time", "1763805600")
		r.Header.Set("Authorization", auth)
		return r
	}
	for _, tc := range []struct {
		name, path, auth string
		status           int
		msg              string
	}{
		{"ok", "/orders/ord-1?currency=IDR", "Bearer " + good, 200, ""},
		{"ok upper-case", "/orders/ord-1?currency=IDR", "Bearer " + strings.ToUpper(good), 200, ""},
		{"fields moved across the delimiter", "/orders/ord-1?currency=IDR", "Bearer " + mac(goldKey, "1763805600", "ord-1I", "DR", "REF_1"), 401, "Invalid hash combination"},
		{"another path value", "/orders/ord-2?currency=IDR", "Bearer " + good, 401, "Invalid hash combination"},
		{"the seed's digest", "/orders/ord-1?currency=IDR", "Bearer " + seedHash(goldKey, "1763805600", "ord-1", "IDR", "REF_1"), 401, "Invalid hash combination"},
		{"another user's secret", "/orders/ord-1?currency=IDR", "Bearer " + mac(regularKey, "1763805600", "ord-1", "IDR", "REF_1"), 401, "Invalid hash combination"},
		{"currency twice", "/orders/ord-1?currency=IDR&currency=USD", "Bearer " + good, 400, "Missing or invalid field"},
		{"no currency", "/orders/ord-1", "Bearer " + good, 400, "Missing or invalid field"},
		{"newline in currency", "/orders/ord-1?currency=ID%0AR", "Bearer " + good, 400, "Missing or invalid field"},
		{"bad query", "/orders/ord-1?currency=%zz", "Bearer " + good, 400, "Missing or invalid field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(mux, req(tc.path, tc.auth))
			if tc.status != 200 {
				wantBody(t, w, tc.status, reseller(tc.status, tc.msg))
				return
			}
			if w.Code != 200 || w.Header().Get("X-Client") != "123" || w.Body.String() != `{"ref_id":"REF_1"}` {
				t.Errorf("got %d client %q body %q", w.Code, w.Header().Get("X-Client"), w.Body)
			}
		})
	}
	r := req("/orders/ord-1?currency=IDR", "Bearer "+good)
	r.Header.Del("X-Request-Time")
	wantBody(t, serve(mux, r), 401, reseller(401, "Unauthorized: Missing required headers"))
}

// TestConcatenationIsAmbiguous pins the weakness of the seed's scheme that
// the docs describe: with no delimiter, a digest over "12"+"3" is one over
// "1"+"23". HMACSignature tells them apart.
func TestConcatenationIsAmbiguous(t *testing.T) {
	keys := resellerStore(t)
	owner := func(*http.Request, []string) (string, error) { return "123", nil }
	fields := []Field{BodyField("a", nil), BodyField("b", nil)}
	plain := MustNew(HashSignature(SignerFromOwner(keys, owner), fields))
	withHMAC := MustNew(HMACSignature(SignerFromOwner(keys, owner), fields))
	m := hmac.New(sha256.New, []byte(goldKey))
	m.Write([]byte("12\n3"))
	for _, tc := range []struct {
		g    *Guard
		auth string
		want int
	}{
		{plain, seedHash(goldKey, "12", "3"), 200},
		{withHMAC, hex.EncodeToString(m.Sum(nil)), 401},
	} {
		w := serve(tc.g.Authenticate()(echo), newReq(`{"a":"1","b":"23"}`, "Authorization", "Bearer "+tc.auth))
		if w.Code != tc.want {
			t.Errorf("status %d, want %d", w.Code, tc.want)
		}
	}
}

// TestLengthExtensionPaddingRefused: the padding a length-extension
// attack appends holds 0x80 and 0x00 bytes; a signed value cannot hold them.
func TestLengthExtensionPaddingRefused(t *testing.T) {
	keys := resellerStore(t)
	g := MustNew(HashSignature(SignerFromOwner(keys, func(*http.Request, []string) (string, error) { return "123", nil }),
		[]Field{BodyField("a", nil), QueryField("b", nil)}), WithDialect(Reseller()))
	for name, r := range map[string]*http.Request{
		"body \\u0000": newReq(`{"a":"x\u0080\u0000\u0000"}`),
		"query %00":    httptest.NewRequest("POST", "/?b=x%80%00%00%01", strings.NewReader(`{"a":"x"}`)),
		"query %80":    httptest.NewRequest("POST", "/?b=x%80", strings.NewReader(`{"a":"x"}`)),
		"query C1":     httptest.NewRequest("POST", "/?b=x%C2%80", strings.NewReader(`{"a":"x"}`)),
	} {
		t.Run(name, func(t *testing.T) {
			r.Header.Set("Authorization", "Bearer "+seedHash(goldKey, "x"))
			wantBody(t, serve(g.Authenticate()(echo), r), 400, reseller(400, "Missing or invalid field"))
		})
	}
}

// TestHashStackInAnyOrder: a hash-signature Guard's wrappers stacked in
// every order accept and refuse the same requests with the same bodies,
// hand the handler the same client and the whole body, and look the key up
// at most once.
func TestHashStackInAnyOrder(t *testing.T) {
	keys := &countingStore{KeyStore: resellerStore(t)}
	g := orderGuard(t, keys)
	stack := fourWrappers(g, "order", func(c *Client) bool { return c.Role != "gold" }, "X-Global", "on")
	body := `{"produk_id":"1","ref_id":"REF_1"}`
	mk := func(key, digest string, global bool) func() *http.Request {
		headers := []string{"X-API-Key", key, "X-Request-Time", "1", "Authorization", "Bearer " + digest}
		if global {
			headers = append(headers, "X-Global", "on")
		}
		return func() *http.Request { return newReq(body, headers...) }
	}
	checkAnyOrder(t, anyOrder{
		stack: func() []namedWrapper { return stack },
		requests: []orderReq{
			{"gold", "123", mk(goldKey, seedHash(goldKey, "REF_1", "14500"), true)},
			{"gold/global", "123", mk(goldKey, seedHash(goldKey, "REF_1", "14500"), false)},
			{"regular", "456", mk(regularKey, seedHash(regularKey, "REF_1", "15000"), true)},
			{"bad hash", "", mk(goldKey, seedHash(goldKey, "REF_1", "15000"), true)},
			{"unknown key", "", mk("nobody", seedHash("nobody", "REF_1", "14500"), true)},
			{"bad/noglobal", "", mk(goldKey, "00", false)},
		},
		handler: echo,
		okBody:  body,
		lookups: keys,
		status:  map[string]int{"gold": 200, "gold/global": 400, "regular": 403, "bad hash": 401, "unknown key": 401},
	})
}

func TestHashStoreFailureIs503(t *testing.T) {
	for name, g := range map[string]*Guard{"status": statusGuard(t, failingStore{}), "order": orderGuard(t, failingStore{})} {
		r := newReq(`{"trx_id":"TRX_123456789","ref_id":"R","produk_id":"1"}`, "Authorization", "Bearer "+seedHash(goldKey, "x"),
			"X-API-Key", goldKey, "X-Request-Time", "1")
		w := serve(g.Authenticate()(echo), r)
		if w.Code != 503 || strings.Contains(w.Body.String(), "db down") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
}

// TestHashWithoutGuard: the Scheme called by hand, on a request no wrapper
// has seen, reads the body through ReadBody and leaves the same bytes for
// the handler.
func TestHashWithoutGuard(t *testing.T) {
	s := HashSignature(SignerFromOwner(resellerStore(t), trxOwner), []Field{BodyField("trx_id", nil)})
	r := newReq(`{"trx_id":"TRX_123456789"}`, "Authorization", "Bearer "+seedHash(goldKey, "TRX_123456789"))
	if c, err := s.Authenticate(r); err != nil || c.ID != "123" {
		t.Errorf("Authenticate: %v %v", c, err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"trx_id":"TRX_123456789"}` {
		t.Errorf("body eaten: %q", b)
	}
	// Through Identify it works.
	r.Body = io.NopCloser(strings.NewReader(`{"trx_id":"TRX_123456789"}`))
	if c, err := MustNew(s).Identify(r); err != nil || c.ID != "123" {
		t.Errorf("Identify: %v %v", c, err)
	}
}

func TestHashConfigErrors(t *testing.T) {
	keys := resellerStore(t)
	f := []Field{BodyField("trx_id", nil)}
	owner := SignerFromOwner(keys, trxOwner)
	for name, s := range map[string]Scheme{
		"zero source":              HashSignature(Signer{}, f),
		"nil store header":         HashSignature(SignerFromHeader(nil, "X-API-Key"), f),
		"nil store owner":          HashSignature(SignerFromOwner(nil, trxOwner), f),
		"nil owner":                HashSignature(SignerFromOwner(keys, nil), f),
		"key in Authorization":     HashSignature(SignerFromHeader(keys, "authorization"), f),
		"bad key header":           HashSignature(SignerFromHeader(keys, "X API Key"), f),
		"no fields":                HashSignature(owner, nil),
		"zero field":               HashSignature(owner, []Field{{}}),
		"empty body name":          HashSignature(owner, []Field{BodyField("", nil)}),
		"empty query name":         HashSignature(owner, []Field{QueryField("", nil)}),
		"empty path name":          HashSignature(owner, []Field{PathField("", nil)}),
		"bad header field":         HashSignature(owner, []Field{HeaderField("X:Y", nil)}),
		"header field not a token": HashSignature(owner, []Field{HeaderField("X(Ref)", nil)}),
		"required not a token":     HashSignature(owner, f, WithRequiredHeaders("X-Time/UTC")),
		"nil compute":              HashSignature(owner, []Field{ComputedField(nil)}),
		"zero limit":               HashSignature(owner, f, WithBodyLimit(0)),
		"bad required header":      HashSignature(owner, f, WithRequiredHeaders("")),
		"HMAC with a sent key":     HMACSignature(SignerFromHeader(keys, "X-API-Key"), f),
		"HMAC zero field":          HMACSignature(owner, []Field{{}}),
		"HMAC negative body size":  HMACSignature(owner, f, WithBodyLimit(-1)),
		"zero option":              HashSignature(owner, f, Option{}),
		"a store's option":         HashSignature(owner, f, WithCapacity(1)),
	} {
		if _, err := New(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for name, s := range map[string]Scheme{
		"status":                HashSignature(owner, f),
		"order":                 HashSignature(SignerFromHeader(keys, "x-api-key"), []Field{BodyField("ref_id", nil), ComputedField(price)}, WithRequiredHeaders("X-Request-Time")),
		"same body field twice": HashSignature(owner, []Field{BodyField("a", nil), BodyField("b", nil), BodyField("a", nil)}),
		"hmac":                  HMACSignature(owner, []Field{HeaderField("X-Request-Time", nil), BodyField("trx_id", nil)}),
	} {
		if _, err := New(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSameBodyFieldTwice: a name listed twice is signed twice.
func TestSameBodyFieldTwice(t *testing.T) {
	g := MustNew(HashSignature(SignerFromOwner(resellerStore(t), func(*http.Request, []string) (string, error) { return "123", nil }),
		[]Field{BodyField("a", nil), BodyField("b", nil), BodyField("a", nil)}))
	r := newReq(`{"b":"2","a":"1"}`, "Authorization", "Bearer "+seedHash(goldKey, "1", "2", "1"))
	if w := serve(g.Authenticate()(echo), r); w.Code != 200 {
		t.Errorf("status %d %s", w.Code, w.Body)
	}
}

func TestHashSeedErrorRows(t *testing.T) {
	for _, tc := range []struct {
		reason error
		status int
		msg    string
	}{
		{ErrInvalidAuthorization, 401, "Unauthorized"},
		{ErrInvalidField, 400, "Missing or invalid field"},
	} {
		g := MustNew(nil, WithDialect(Reseller()))
		w := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.Deny(w, r, tc.reason) }), httptest.NewRequest("GET", "/", nil))
		wantBody(t, w, tc.status, reseller(tc.status, tc.msg))
		e := NewError(tc.reason)
		if m, ok := text(e); !ok || m.ID == "" || m.EN == "" {
			t.Errorf("%s: no catalogue text", e.Code)
		}
	}
}

// FuzzHashAuth sends arbitrary bodies and headers to the order and status
// routes. It checks that nothing panics or answers 500, that every answer
// is one of the documented statuses, and that a 200 means the digest is
// the seed's hash over the values a handler decoding the body with
// encoding/json sees, with the handler getting the body byte for byte.
func FuzzHashAuth(f *testing.F) {
	keys := resellerStore(f)
	order := orderGuard(f, keys).Authenticate()(echo)
	status := statusGuard(f, keys, WithBodyLimit(4096)).Authenticate()(echo)
	orderBody := `{"user_id":"123456","zone":"1234","produk_id":"1","ref_id":"REF_123456789"}`
	f.Add(orderBody, "Bearer "+seedHash(goldKey, "REF_123456789", "14500"), goldKey, "1763805600", false, false)
	f.Add(`{"produk_id":"2","ref_id":"R\u00e9F","REF_ID":"x"}`, "Bearer "+seedHash(regularKey, "RéF", "16000"), regularKey, "1", false, false)
	f.Add(`{"trx_id":"TRX_123456789"}`, "Bearer "+seedHash(goldKey, "TRX_123456789"), "", "", true, false)
	f.Add(`{"trx_id":"TRX_OF_456","x":[1,{"y":null}]}`, "bearer "+strings.ToUpper(seedHash(regularKey, "TRX_OF_456")), "", "", true, false)
	f.Add(`{"trx_id":"TRX_123456789","trx_id":"TRX_OF_456"}`, "Bearer "+seedHash(regularKey, "TRX_OF_456"), "", "", true, false)
	f.Add(`{"trx_id":"TRX\u005f123456789"}`, "Bearer 00", "", "", true, false)
	f.Add(`{"Trx_Id":"TRX_OF_456","produk_id":"1","ref_id":"A\u00e9\ud83d\ude00"}`, "", goldKey, "1", false, true)
	f.Add(`{"trx_id":"TRX_OF_456","TRX_ID":"TRX_123456789"}`, "", "", "", true, true)
	keyOf := map[string]string{"123": goldKey, "456": regularKey}
	// seen is what a handler decoding body with encoding/json sees.
	type seen struct {
		TrxID    string `json:"trx_id"`
		RefID    string `json:"ref_id"`
		ProdukID string `json:"produk_id"`
	}
	f.Fuzz(func(t *testing.T, body, auth, apiKey, reqTime string, statusRoute, selfSign bool) {
		// selfSign: sign what encoding/json sees, so the request reaches
		// the comparison with a digest that must match.
		var v seen
		if selfSign && json.Unmarshal([]byte(body), &v) == nil {
			if statusRoute {
				if owner, err := trxOwner(nil, []string{v.TrxID}); err == nil && keyOf[owner] != "" {
					auth = "Bearer " + seedHash(keyOf[owner], v.TrxID)
				}
			} else if c, err := keys.Lookup(context.Background(), apiKey); err == nil {
				if p, err := price(httptest.NewRequest("POST", "/", strings.NewReader(body)), c); err == nil {
					auth = "Bearer " + seedHash(apiKey, v.RefID, p)
				}
			}
		}
		r := httptest.NewRequest("POST", "/topup", strings.NewReader(body))
		for name, v := range map[string]string{"Authorization": auth, "X-Api-Key": apiKey, "X-Request-Time": reqTime} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		h := order
		if statusRoute {
			h = status
		}
		w := serve(h, r)
		if selfSign && strings.Contains(w.Body.String(), "Invalid hash combination") && strings.HasPrefix(auth, "Bearer ") {
			// The digest signs what encoding/json sees; refusing it means
			// the scheme signed something else. Only a body the scheme
			// should refuse first (a duplicate name) could explain it.
			t.Fatalf("signed what encoding/json sees, refused as a mismatch: %q", body)
		}
		switch w.Code {
		case 200:
		case 400, 401, 404, 413:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d body %q", w.Code, w.Body)
			}
			return
		default:
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		if w.Body.String() != body || w.Header().Get("X-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("handler got %q (length %s), sent %q", w.Body, w.Header().Get("X-Length"), body)
		}
		// What a handler sees, decoding the body as usual.
		var seen seen
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %q", body)
		}
		digest, _ := cutScheme(auth, "Bearer")
		var want string
		if statusRoute {
			owner, err := trxOwner(nil, []string{seen.TrxID})
			if err != nil {
				t.Fatalf("accepted an unknown transaction %q", seen.TrxID)
			}
			want = seedHash(keyOf[owner], seen.TrxID)
		} else {
			c, err := keys.Lookup(context.Background(), apiKey)
			if err != nil {
				t.Fatalf("accepted key %q", apiKey)
			}
			p, err := price(httptest.NewRequest("POST", "/", strings.NewReader(body)), c)
			if err != nil {
				t.Fatalf("accepted a body without a price: %v", err)
			}
			want = seedHash(apiKey, seen.RefID, p)
		}
		if !strings.EqualFold(digest, want) {
			t.Fatalf("accepted digest %q, the handler's values sign to %s (body %q)", digest, want, body)
		}
	})
}

// TestNonHexDigestNeverMatches pins a trap of decoding in place: a digest
// whose last digit is not hex leaves the last byte of the buffer zero, so
// without the validity flag it would match a true digest ending in 0x00.
func TestNonHexDigestNeverMatches(t *testing.T) {
	g := MustNew(HashSignature(SignerFromOwner(resellerStore(t), func(*http.Request, []string) (string, error) { return "123", nil }),
		[]Field{BodyField("id", nil)}))
	for i := 0; ; i++ {
		id := "ID" + strconv.Itoa(i)
		d := seedHash(goldKey, id)
		if !strings.HasSuffix(d, "00") {
			continue
		}
		for _, bad := range []string{d[:62] + "0g", d[:62] + "g0", d[:62] + "0 "} {
			w := serve(g.Authenticate()(echo), newReq(`{"id":"`+id+`"}`, "Authorization", "Bearer "+bad))
			if w.Code != 401 {
				t.Errorf("digest %q: status %d", bad, w.Code)
			}
		}
		if w := serve(g.Authenticate()(echo), newReq(`{"id":"`+id+`"}`, "Authorization", "Bearer "+d)); w.Code != 200 {
			t.Errorf("good digest: status %d", w.Code)
		}
		return
	}
}

// TestFunctionsReadWholeBody: the owner function and the computed field, for
// every key of a client in its rotation overlap, each read the whole body
// (regression: they shared one reader, and the second reader got nothing).
func TestFunctionsReadWholeBody(t *testing.T) {
	keys := mustStore(t,
		KeySpec{Key: "key-old", Client: Client{ID: "u1", KeyID: "a-old"}, KeepSecret: true},
		KeySpec{Key: "key-new", Client: Client{ID: "u1", KeyID: "b-new"}, KeepSecret: true},
	)
	body := `{"ref_id":"R1","amount":"5"}`
	var seen []string
	owner := func(r *http.Request, _ []string) (string, error) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, "owner:"+string(b))
		return "u1", nil
	}
	amount := func(r *http.Request, _ *Client) (string, error) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, "compute:"+string(b))
		if string(b) != body {
			return "", ErrInvalidBody
		}
		return "5", nil
	}
	g := MustNew(HashSignature(SignerFromOwner(keys, owner), []Field{BodyField("ref_id", nil), ComputedField(amount)}))
	var got []byte
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
	// Signed with the second key tried, so both keys' digests are computed.
	r := newReq(body, "Authorization", "Bearer "+seedHash("key-new", "R1", "5"))
	if w := serve(h, r); w.Code != 200 || string(got) != body {
		t.Fatalf("status %d, handler got %q", w.Code, got)
	}
	for _, s := range seen {
		if !strings.HasSuffix(s, body) {
			t.Errorf("a function read %q", s)
		}
	}
	if len(seen) != 3 {
		t.Errorf("functions called %d times: %v", len(seen), seen)
	}
}

// TestIdentifyKeepsBody: a handler that checks a hash signature by hand
// with Identify still reads the whole body (regression: Identify drained
// it).
func TestIdentifyKeepsBody(t *testing.T) {
	keys := mustStore(t, KeySpec{Key: "k1", Client: Client{ID: "c1"}})
	g := MustNew(HashSignature(SignerFromHeader(keys, "X-API-Key"), []Field{BodyField("ref_id", nil)}))
	body := `{"ref_id":"R1","amount":5}`
	r := newReq(body, "X-API-Key", "k1", "Authorization", "Bearer "+seedHash("k1", "R1"))
	c, err := g.Identify(r)
	if err != nil || c.ID != "c1" {
		t.Fatalf("Identify: %v %v", c, err)
	}
	if got, _ := io.ReadAll(r.Body); string(got) != body || r.ContentLength != int64(len(body)) {
		t.Errorf("handler reads %q (length %d)", got, r.ContentLength)
	}
}

// TestHashAuthAllocations: a hash-signed request with a 200-byte body
// costs two allocations through Authenticate, 800 bytes: its state, the
// request that carries it and the body's room in one (768 bytes), and the
// GetBody handed on (32); the handler reads the body it is handed
// (regression: the body's room was an allocation of its own, 832 bytes in
// three).
func TestHashAuthAllocations(t *testing.T) {
	if rateLimitRace {
		t.Skip("allocations are not measured under the race detector")
	}
	g := MustNew(HashSignature(SignerFromHeader(resellerStore(t), "X-API-Key"), []Field{BodyField("ref_id", nil)}))
	body := sizedBody(200)
	dst := make([]byte, len(body)+1)
	var read []byte
	h := g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.ReadFull(r.Body, dst)
		read = dst[:n]
		w.WriteHeader(http.StatusOK)
	}))
	w := &benchWriter{h: http.Header{}}
	r, rd := newSizedReq(seedHash(goldKey, "REF_123456789"), body)
	run := func() {
		rd.Reset(body)
		read = nil
		h.ServeHTTP(w, r)
	}
	allocs := testing.AllocsPerRun(50, run)
	per := allocBytes(50, run)
	if w.code != http.StatusOK || !bytes.Equal(read, body) {
		t.Fatalf("status %d, handler read %d bytes", w.code, len(read))
	}
	if allocs != 2 || per > 800 {
		t.Errorf("%v allocations, %d bytes a request; want 2, at most 800", allocs, per)
	}
}
