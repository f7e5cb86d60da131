package apiguard

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
)

// WithFailureLimit makes a Guard (New) limit the failed attempts at its
// credentials: the requests its Scheme refuses as wrong, where a caller
// may be guessing a key, a password or an account's credentials. Each
// failure takes a token from l in these budgets:
//
//   - the client IP's (Guard.ClientIP; an IPv6 address by its /64, as ByIP
//     counts; requests whose IP cannot be told share one);
//   - for each of accounts, the account the request claims (such as
//     ByHeader("X-Merchant-Id"), 88Pay's merchant) within the client's
//     network: its /24 for IPv4, its /48 for IPv6. A guesser elsewhere
//     never touches the budget of the account's owner.
//
// Before its Scheme looks at a request's credentials, the Guard refuses
// the request with 429 (ErrRateLimited, Retry-After) while any of its
// budgets has no token left, whatever credentials it carries: letting a
// right one through an empty budget would tell a guesser which guess was
// right. So the real owner of an account is refused only when a budget it
// draws from is used up: its own address's (shared behind a NAT), or its
// account's in its own /24 or /48; by itself, or by a guesser who shares
// that address or network; and only until a token refills. From any other
// network its right credentials go through. A request the Scheme accepts takes nothing;
// missing credentials (ErrMissingKey) and a failing KeyStore
// (ErrUnavailable) are not failures. Concurrent failures may exceed a
// budget by the requests in flight at once.
//
// Give it a Limiter of its own (its windows are the budgets: PerMinute(5)
// and PerHour(20), say) or one shared with rate limits: its keys never
// collide with RateLimit's. A MemoryLimiter counts the keys of one
// network in that network's share, so junk account names sent from one
// network fill at most its share. When l fails, the request is refused
// with 503 (ErrUnavailable), as RateLimit does. The check costs every
// request a Take of nothing per budget (a round trip each on a Limiter in
// Redis), and a failure a Take of one per budget.
//
// The limit applies wherever the Guard establishes identity (Authenticate,
// RequireScope, ByClient, RequestID, Identify, Sessions.Issuer), once a
// request, in any order of the stack. An account Bucket that needs the
// caller's identity (ByClient) makes New fail: a failed attempt has none.
func WithFailureLimit(l Limiter, accounts ...Bucket) Option {
	return Option{"WithFailureLimit", toGuard, func(c *config) error {
		switch {
		case isNil(l):
			return fmt.Errorf("apiguard: WithFailureLimit needs a Limiter, not %v", nilName(l))
		case isZeroLimiter(l):
			return errors.New("apiguard: WithFailureLimit needs a Limiter, not a zero MemoryLimiter (build one with NewMemoryLimiter)")
		}
		f := &failureLimit{l: l}
		for i, a := range accounts {
			switch {
			case a.key == nil:
				return fmt.Errorf("apiguard: WithFailureLimit: account %d is a zero Bucket", i)
			case a.client:
				return fmt.Errorf("apiguard: WithFailureLimit: account %d counts by the caller's identity, which a failed attempt does not have: count by the account it claims (ByHeader)", i)
			}
			f.accounts = append(f.accounts, a)
		}
		c.failures = f
		return nil
	}}
}

// failureLimit is a Guard's limit of failed attempts (WithFailureLimit).
type failureLimit struct {
	l        Limiter
	accounts []Bucket // the claimed accounts, each counted in the caller's network
}

// budget returns the Limiter key of r's budget i: 0 is the client IP's,
// i > 0 that of accounts[i-1] in the client's network. The keys have
// ByAll's form, the IP first, so that a MemoryLimiter counts them in the
// client's network's share, and "failed" second, so that they never
// collide with a RateLimit's keys:
//
//	12:ip:192.0.2.1|6:failed|
//	15:ip:192.0.2.0/24|6:failed|26:header:X-Merchant-Id:MCH-1|
func (f *failureLimit) budget(g *Guard, r *http.Request, s *state, i int) (string, error) {
	var account string
	if i > 0 {
		var err error
		if account, err = f.accounts[i-1].key(g, r, s); err != nil {
			return "", err
		}
	}
	var ipb [64]byte
	part := append(ipb[:0], "ip:"...)
	ip, ok := g.ClientIP(r)
	switch {
	case !ok:
		part = append(part, "unknown"...)
	case i == 0 && ip.Is4():
		part = ip.AppendTo(part)
	default:
		bits := 64 // the client's IPv6 /64, as ByIP counts it
		if i > 0 {
			bits = 48 // the client's network
			if ip.Is4() {
				bits = 24
			}
		}
		part = netip.PrefixFrom(ip.WithZone(""), bits).Masked().AppendTo(part)
	}
	var buf [192]byte
	b := strconv.AppendInt(buf[:0], int64(len(part)), 10)
	b = append(append(append(b, ':'), part...), "|6:failed|"...)
	if i > 0 {
		b = strconv.AppendInt(b, int64(len(account)), 10)
		b = append(append(append(b, ':'), account...), '|')
	}
	return string(b), nil
}

// errTooManyFailures refuses a request whose caller used up a failure
// budget.
var errTooManyFailures = &causeError{ErrRateLimited, "too_many_failures"}

// admit returns the refusal of r when one of its budgets is used up, or
// when the Limiter fails; nil lets the Scheme look at r. A nil f admits
// every request.
func (f *failureLimit) admit(g *Guard, r *http.Request, s *state) error {
	if f == nil {
		return nil
	}
	t := s.timed()
	for i := 0; i <= len(f.accounts); i++ {
		key, err := f.budget(g, r, s, i)
		if err != nil {
			return err
		}
		t0 := t.start()
		res, err := f.l.Take(r.Context(), key, 0) // takes nothing: how many are left
		if err == nil && res.Remaining < 1 {
			// Refused, a Take of one says how long to wait, and takes
			// nothing; should a token have come meanwhile, it counts as
			// this request's failure in advance.
			res, err = f.l.Take(r.Context(), key, 1)
		}
		t.limiterDone(t0, res)
		switch {
		case err != nil:
			return fmt.Errorf("%w: failure limit: %w", errLimiterFailed, err)
		case !res.Allowed:
			e := NewError(errTooManyFailures)
			e.RetryAfter = max(res.RetryAfter, 1)
			return e
		}
	}
	return nil
}

// count takes a token from each of r's budgets when err, the Guard's
// verdict on r, is a failed attempt. A nil f counts nothing.
func (f *failureLimit) count(g *Guard, r *http.Request, s *state, err error) {
	if f == nil || !isFailedAttempt(err) {
		return
	}
	t := s.timed()
	for i := 0; i <= len(f.accounts); i++ {
		key, kerr := f.budget(g, r, s, i)
		if kerr != nil {
			continue
		}
		t0 := t.start()
		f.l.Take(r.Context(), key, 1) // a Limiter that fails counts nothing: admit refuses while it does
		if t != nil {
			t.limiter += t.now().Sub(t0)
		}
	}
}

// isFailedAttempt reports whether err refuses credentials as wrong, rather
// than missing, or unchecked because a store failed.
func isFailedAttempt(err error) bool {
	switch {
	case errors.Is(err, ErrMissingKey), errors.Is(err, ErrMissingHeaders), errors.Is(err, ErrUnavailable):
		return false
	}
	return errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrHashMismatch) ||
		errors.Is(err, ErrInvalidAuthorization) || errors.Is(err, ErrInvalidToken)
}
