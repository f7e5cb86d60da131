package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
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
			if !tokenOK(s) || strings.ContainsAny(s, "\r\n \t") {
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

// FuzzHashBody: signing a body either fails or sends the same bytes, and
// the member signed is the one encoding/json finds.
func FuzzHashBody(f *testing.F) {
	for _, s := range []string{`{"trx_id":"TRX_123456789"}`, `{"trx_id":123}`, `{"trx_id":-1.5e3}`, `{"trx_id":null}`,
		`{"trx_id":"\u0000\ud800"}`, `{"trx_id":"a","trx_id":"b"}`, `{"trx_id":[1]}`, `{}`, `[]`, `"x"`, ``, `{"trx_id":"a"} trailing`} {
		f.Add([]byte(s))
	}
	s, err := StatusHash("k")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := jsonMember(body, "trx_id")
		want, wantErr := referenceMember(body, "trx_id")
		if (err == nil) != (wantErr == nil) || v != want {
			t.Fatalf("%q: got %q, %v; encoding/json gives %q, %v", body, v, err, want, wantErr)
		}
		r := httptest.NewRequest("POST", "/status", bytes.NewReader(body))
		if err := s.Sign(r); (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: Sign says %v, encoding/json %v", body, err, wantErr)
		}
		if wantErr != nil {
			return
		}
		got, _ := io.ReadAll(r.Body)
		if !bytes.Equal(got, body) || r.ContentLength != int64(len(body)) {
			t.Fatalf("body changed: %q -> %q", body, got)
		}
		a := r.Header.Get("Authorization")
		if len(a) != len("Bearer ")+64 || !strings.HasPrefix(a, "Bearer ") {
			t.Fatalf("Authorization %q", a)
		}
	})
}

// referenceMember is JSONField's rule written with encoding/json.
func referenceMember(body []byte, name string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return "", errNotObject
	}
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return string(raw), nil
	}
	return "", errors.New("neither a string nor a number")
}
