package apiguard

import (
	"net/http"
	"time"
)

// RequestTime returns a wrapper that requires an X-Request-Time header
// within window of the Guard's clock (WithClock), before or after it, as the
// Reseller API's order endpoint does. A window of zero or less means the
// default, 5 minutes.
//
// The time is Unix seconds ("1763805600"), Unix milliseconds
// ("1763805600000"; any number of 10^11 or more is read as milliseconds) or
// RFC 3339 ("2025-11-22T10:00:00Z", "2025-11-22T17:00:00.5+07:00"). Signs,
// decimals, white space, numbers of more than 18 digits and several
// X-Request-Time headers are refused.
//
// Refusals are 400 "Request expired" (ErrRequestExpired) for a time outside
// the window and 400 "Invalid X-Request-Time format" (ErrRequestTimeFormat)
// for one that does not parse; no X-Request-Time at all is 401
// (ErrMissingHeaders; "Unauthorized: Missing required headers" in the
// Reseller dialect). Every refusal carries a Date header with the server's
// time, so that a client whose clock is off can correct it.
//
// RequestTime bounds how old a request may be; pair it with RequestID to
// refuse a replay within the window.
func (g *Guard) RequestTime(window time.Duration) Middleware {
	if window <= 0 {
		window = 5 * time.Minute
	}
	return g.wrap("request_time", false, func(w http.ResponseWriter, r *http.Request, _ *state) error {
		now := g.now()
		err := checkRequestTime(r.Header["X-Request-Time"], now, window)
		if err != nil {
			w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		}
		return err
	})
}

func checkRequestTime(vs []string, now time.Time, window time.Duration) error {
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return ErrMissingHeaders
	case len(vs) > 1:
		return ErrRequestTimeFormat
	}
	t, ok := parseRequestTime(vs[0])
	if !ok {
		return ErrRequestTimeFormat
	}
	// Sub saturates, so times centuries away cannot overflow into the window.
	if d := now.Sub(t); d > window || d < -window {
		return ErrRequestExpired
	}
	return nil
}

// msThreshold separates Unix seconds from Unix milliseconds: 10^11 seconds
// is in the year 5138, 10^11 milliseconds in 1973.
const msThreshold = 1e11

// parseRequestTime parses an X-Request-Time value. See RequestTime.
func parseRequestTime(s string) (time.Time, bool) {
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	if s[0] >= '0' && s[0] <= '9' && len(s) <= 18 {
		var n int64
		digits := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				digits = false
				break
			}
			n = n*10 + int64(c-'0') // 18 digits cannot overflow int64
		}
		if digits {
			if n < msThreshold {
				return time.Unix(n, 0), true
			}
			return time.UnixMilli(n), true
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}
