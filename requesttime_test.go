package apiguard

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestRequestTime(t *testing.T) {
	clock := newTestClock() // 2026-11-22T10:00:00Z
	now := clock.Now()
	g := MustNew(nil, WithDialect(Reseller()), WithClock(clock.Now))
	const (
		expired = `{"status":"error","message":"Request expired","code":400}`
		format  = `{"status":"error","message":"Invalid X-Request-Time format","code":400}`
		missing = `{"status":"error","message":"Unauthorized: Missing required headers","code":401}`
	)
	sec := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	cases := []struct {
		name   string
		values []string
		status int
		body   string
	}{
		{"seconds now", []string{sec(0)}, 200, ""},
		{"milliseconds now", []string{ms(0)}, 200, ""},
		{"rfc3339 now", []string{now.Format(time.RFC3339)}, 200, ""},
		{"rfc3339 offset", []string{now.In(time.FixedZone("WIB", 7*3600)).Format(time.RFC3339)}, 200, ""},
		{"rfc3339 fraction", []string{now.Add(-time.Minute).Format(time.RFC3339Nano)}, 200, ""},
		{"seconds 5m old", []string{sec(-5 * time.Minute)}, 200, ""},
		{"seconds 5m ahead", []string{sec(5 * time.Minute)}, 200, ""},
		{"milliseconds 5m ahead", []string{ms(5 * time.Minute)}, 200, ""},
		{"seconds 5m1s old", []string{sec(-5*time.Minute - time.Second)}, 400, expired},
		{"seconds 5m1s ahead", []string{sec(5*time.Minute + time.Second)}, 400, expired},
		{"milliseconds 1ms too old", []string{ms(-5*time.Minute - time.Millisecond)}, 400, expired},
		{"rfc3339 an hour old", []string{now.Add(-time.Hour).Format(time.RFC3339)}, 400, expired},
		{"epoch", []string{"0"}, 400, expired},
		{"far future", []string{"99999999999"}, 400, expired},
		{"18 digits", []string{"999999999999999999"}, 400, expired},
		{"year 9999", []string{"9999-12-31T23:59:59Z"}, 400, expired},
		{"missing", nil, 401, missing},
		{"empty", []string{""}, 401, missing},
		{"19 digits", []string{"1000000000000000000"}, 400, format},
		{"overflow", []string{"99999999999999999999999999"}, 400, format},
		{"negative", []string{"-" + sec(0)}, 400, format},
		{"plus", []string{"+" + sec(0)}, 400, format},
		{"decimal", []string{sec(0) + ".5"}, 400, format},
		{"hex", []string{"0x6920B4A0"}, 400, format},
		{"space inside", []string{sec(0)[:4] + " " + sec(0)[4:]}, 400, format},
		{"rfc1123", []string{now.Format(http.TimeFormat)}, 400, format},
		{"no zone", []string{"2026-11-22T10:00:00"}, 400, format},
		{"date only", []string{"2026-11-22"}, 400, format},
		{"words", []string{"now"}, 400, format},
		{"two headers", []string{sec(0), sec(0)}, 400, format},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/order", nil)
			for _, v := range tc.values {
				r.Header.Add("X-Request-Time", v)
			}
			w := serve(g.RequestTime(0)(okHandler), r)
			if tc.status == 200 {
				if w.Code != 200 {
					t.Errorf("status %d (%s), want 200", w.Code, w.Body)
				}
				if w.Header().Get("Date") != "" {
					t.Error("Date set on an accepted request")
				}
				return
			}
			wantBody(t, w, tc.status, tc.body)
			if got := w.Header().Get("Date"); got != "Sun, 22 Nov 2026 10:00:00 GMT" {
				t.Errorf("Date = %q, want the server's time", got)
			}
		})
	}
}

func TestRequestTimeWindowAndClock(t *testing.T) {
	clock := newTestClock()
	g := MustNew(nil, WithClock(clock.Now))
	h := g.RequestTime(30 * time.Second)(okHandler)
	sent := strconv.FormatInt(clock.Now().Unix(), 10)
	do := func() int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Request-Time", sent)
		return serve(h, r).Code
	}
	if c := do(); c != 200 {
		t.Fatalf("fresh: %d", c)
	}
	clock.Advance(30 * time.Second)
	if c := do(); c != 200 {
		t.Fatalf("at the edge: %d", c)
	}
	clock.Advance(time.Second)
	if c := do(); c != 400 {
		t.Fatalf("past the window: %d", c)
	}
}

// TestRequestTimeProblemLocalized: the default dialect's texts, by
// x-language.
func TestRequestTimeProblemLocalized(t *testing.T) {
	clock := newTestClock()
	h := MustNew(nil, WithClock(clock.Now)).RequestTime(0)(okHandler)
	for _, tc := range []struct{ lang, value, body string }{
		{"", "0", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Request expired","code":"request_expired"}`},
		{"id", "0", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Permintaan kedaluwarsa","code":"request_expired"}`},
		{"en", "0", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Request expired","code":"request_expired"}`},
		{"id", "x", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Format X-Request-Time tidak valid","code":"invalid_request_time"}`},
		{"en", "x", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Invalid X-Request-Time format","code":"invalid_request_time"}`},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Request-Time", tc.value)
		if tc.lang != "" {
			r.Header.Set("X-Language", tc.lang)
		}
		wantBody(t, serve(h, r), 400, tc.body)
	}
}

// FuzzRequestTime checks the X-Request-Time parser: no panic; a number of
// up to 18 digits is seconds below 10^11 and milliseconds from there; any
// other accepted value is what time.Parse reads as RFC 3339; and the window
// check refuses without panicking whatever the value.
func FuzzRequestTime(f *testing.F) {
	for _, s := range []string{"1763805600", "1763805600000", "2026-11-22T10:00:00Z", "2026-11-22T17:00:00.123456789+07:00",
		"-1", "+1", "99999999999999999999", "0", "1e9", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00-23:59"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRequestTime(s)
		digits := s != "" && len(s) <= 18
		for i := 0; i < len(s); i++ {
			digits = digits && s[i] >= '0' && s[i] <= '9'
		}
		switch {
		case digits:
			n, err := strconv.ParseInt(s, 10, 64)
			want := time.Unix(n, 0)
			if n >= 1e11 {
				want = time.UnixMilli(n)
			}
			if err != nil || !ok || !got.Equal(want) {
				t.Fatalf("%q: got %v %v, want %v", s, got, ok, want)
			}
		case ok:
			want, err := time.Parse(time.RFC3339, s)
			if err != nil || !got.Equal(want) || s[0] == '-' || s[0] == '+' {
				t.Fatalf("%q: accepted as %v (time.Parse: %v)", s, got, err)
			}
		}
		err := checkRequestTime([]string{s}, now, 5*time.Minute)
		if ok != (err != ErrRequestTimeFormat) && s != "" {
			t.Fatalf("%q: parse %v but check says %v", s, ok, err)
		}
		if err == nil && (got.Before(now.Add(-5*time.Minute)) || got.After(now.Add(5*time.Minute))) {
			t.Fatalf("%q: %v accepted outside the window", s, got)
		}
	})
}
