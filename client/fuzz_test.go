package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

var fuzzNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// FuzzRetryAfter: a parsed wait is never negative nor past the cap, and
// plain seconds read as strconv reads them.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "7", "60", " 120 ", "-1", "1.5", "", "99999999999999999999999",
		"Sun, 22 Nov 2026 10:00:30 GMT", "Sunday, 22-Nov-26 10:00:30 GMT", "Sun Nov 22 10:00:30 2026", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := retryAfter(http.Header{"Retry-After": {v}}, fuzzNow)
		if !ok {
			if d != 0 {
				t.Fatalf("%q: not ok but %v", v, d)
			}
			return
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("%q: wait %v out of [0, %v]", v, d, maxRetryAfter)
		}
		tv := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(tv, 10, 64); err == nil && n >= 0 && n < 1<<31 && tv[0] != '+' {
			if d != time.Duration(n)*time.Second {
				t.Fatalf("%q: %v, want %ds", v, d, n)
			}
		}
	})
}

// FuzzParseToken: whatever a token endpoint answers, an accepted token is
// safe to put in a header and lives a positive, bounded time.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		`{"status":"Success","code":200,"message":"Token generated successfully","data":{"access_token":"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig","expires_in":60,"session_id":"sess_53a2cfc4-441e-4554-b560-4e008784d98e"}}`,
		`{"data":{"access_token":"t","session_id":"s"}}`,
		`{"data":{"access_token":"t","session_id":"s","expires_in":1e308}}`,
		`{"data":{"access_token":"t\n","session_id":"s","expires_in":0.5}}`,
		`{"data":null}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), int64(10))
	}
	f.Fuzz(func(t *testing.T, body []byte, marginSec int64) {
		margin := time.Duration(marginSec%3600) * time.Second
		if margin < 0 {
			margin = -margin
		}
		tok, err := parseToken(body, fuzzNow, margin)
		if err != nil {
			return
		}
		for _, s := range []string{tok.AccessToken, tok.SessionID} {
			if !wire.ValidCredential(s) || strings.ContainsAny(s, "\r\n \t") {
				t.Fatalf("unsafe value %q accepted", s)
			}
		}
		if !tok.Expires.After(fuzzNow) || tok.Expires.After(fuzzNow.Add(24*time.Hour)) {
			t.Fatalf("expires %v", tok.Expires)
		}
		if !tok.refresh.After(fuzzNow) || tok.refresh.After(tok.Expires) {
			t.Fatalf("refresh %v, expires %v", tok.refresh, tok.Expires)
		}
	})
}

// FuzzHashBody: signing a body either fails with ErrInvalidBody (or
// ErrFieldValue) or signs the value that a handler decoding the body with
// encoding/json finds (into a map, and into a struct, which matches names
// in any case), and sends the body byte for byte.
func FuzzHashBody(f *testing.F) {
	for _, s := range []string{`{"trx_id":"TRX_123456789"}`, `{"trx_id":123}`, `{"trx_id":-1.5e3}`, `{"trx_id":null}`,
		`{"trx_id":"\u0000\ud800"}`, `{"trx_id":"a","trx_id":"b"}`, `{"trx_id":"a","TRX_ID":"b"}`, `{"TRX_ID":"b"}`,
		`{"trx_id":[1]}`, `{}`, `[]`, `"x"`, ``, `{"trx_id":"a"} trailing`, `{"trx_id":"\u00e9\n"}`} {
		f.Add([]byte(s))
	}
	s, err := StatusHash("k")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/status", bytes.NewReader(body))
		if err := s.Sign(r); err != nil {
			if !errors.Is(err, ErrInvalidBody) && !errors.Is(err, ErrFieldValue) {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil || m == nil {
			t.Fatalf("%q: signed what encoding/json does not read as an object: %v", body, err)
		}
		// The member named exactly trx_id is signed; absent, null or "" it
		// is signed as "", which the server refuses as missing, so that no
		// handler sees the body (whatever a struct, matching names in any
		// case, would read from it: {"trX_iD":0}, found by the campaign).
		var want string
		if raw, ok := m["trx_id"]; ok && string(raw) != "null" {
			if raw[0] != '"' || json.Unmarshal(raw, &want) != nil {
				t.Fatalf("%q: signed trx_id %s, which is not a string", body, raw)
			}
		}
		if want != "" {
			var st struct {
				TrxID *string `json:"trx_id"`
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("%q: signed what a handler's struct cannot read: %v", body, err)
			}
			if st.TrxID == nil || *st.TrxID != want {
				t.Fatalf("%q: signed trx_id %q, a handler's struct sees %v", body, want, st.TrxID)
			}
		}
		sum := sha256.Sum256([]byte("k" + want))
		if got, wantH := r.Header.Get("Authorization"), "Bearer "+hex.EncodeToString(sum[:]); got != wantH {
			t.Fatalf("%q: %s; a handler sees trx_id %q, whose signature is %s", body, got, want, wantH)
		}
		got, _ := io.ReadAll(r.Body)
		if !bytes.Equal(got, body) || r.ContentLength != int64(len(body)) {
			t.Fatalf("body changed: %q -> %q", body, got)
		}
	})
}
