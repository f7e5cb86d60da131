package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apiguard/apiguard/internal/wire"
)

// Token is an 88Pay access token and the session id it belongs to.
type Token struct {
	AccessToken string
	SessionID   string
	// Expires is when the server said the token expires, counted from
	// when the request for it was sent.
	Expires time.Time
}

// TokenError is the answer of a token endpoint that refused to issue a
// token, such as 401 "Invalid API key or merchant ID" or 429 "Rate limit
// exceeded". Session's RoundTrip returns it (wrapped in a *url.Error by
// http.Client); match it with errors.As.
type TokenError struct {
	StatusCode int           // the HTTP status
	Message    string        // the message of the 88Pay envelope, if any
	RetryAfter time.Duration // the Retry-After of a 429, if any
}

// Error returns the status and the server's message. It never holds a
// credential.
func (e *TokenError) Error() string {
	s := "client: token endpoint answered " + strconv.Itoa(e.StatusCode)
	if e.Message != "" {
		s += ": " + strconv.Quote(e.Message)
	}
	return s
}

// ErrTokenResponse is returned when a token endpoint answers 2xx with a body
// that is not the 88Pay envelope with an access token and a session id.
var ErrTokenResponse = errors.New("client: malformed token response")

// Session is an http.RoundTripper for APIs of 88Pay's two-layer scheme
// (seed 004). It exchanges an API key and a merchant id for an access
// token and a session id at the token endpoint (POST with x-api-key and
// x-merchant-id), and sends them with each request:
//
//	Authorization: Bearer <access_token>
//	x-session-id: <session_id>
//
// A token is kept until WithTokenMargin before it expires (50 s of 88Pay's
// 60 s by default). Concurrent callers that need a new token share one
// request for it, made on a context of its own; a caller whose context
// ends stops waiting, and the request is abandoned when no caller waits
// for it any more.
//
// A request answered 401 is sent once more with a fresh token. A request
// answered 429, and a token request answered 429, is sent again after the
// wait its Retry-After asks for (without one, 1 s, 2 s, 4 s, ...), at most
// WithRetry429's number of times and only while the wait is within its bound;
// otherwise the 429 is returned. Waits end early with the request's
// context. Requests are sent again only when they can be: with no body, or
// with GetBody set (as http.NewRequest sets it for in-memory bodies).
//
// Only requests to the token endpoint's origin (scheme and host) are
// signed; others go through base untouched, so credentials never follow a
// redirect to another host. Token requests are not redirected.
//
// A Session is safe for concurrent use. It starts a goroutine only while a
// token request is in flight.
type Session struct {
	tokenURL   string
	scheme     string
	host       string
	apiKey     string
	merchantID string
	base       http.RoundTripper

	now     func() time.Time
	margin  time.Duration
	retries int
	maxWait time.Duration
	sleep   func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tok    cachedToken // the current token; zero if none
	flight *flight     // the token request in flight; nil if none
	seq    uint64      // the number of token requests started
}

type cachedToken struct {
	Token
	refresh time.Time // when to fetch another
	seq     uint64    // the request that fetched it
}

// flight is a token request shared by the callers waiting for it.
type flight struct {
	done    chan struct{} // closed when tok and err are set
	tok     cachedToken
	err     error
	waiters int // callers waiting; guarded by Session.mu
	cancel  context.CancelFunc
}

// WithTokenMargin sets how long before its expiry a Session replaces its
// token; a token is always kept for at least half its life. The default is
// 10 seconds, so that 88Pay's 60-second tokens are kept 50 seconds, as
// 88Pay advises.
func WithTokenMargin(d time.Duration) Option {
	return Option{"WithTokenMargin", nil, func(p *Session) error {
		if d < 0 {
			return fmt.Errorf("client: WithTokenMargin must not be negative, got %v", d)
		}
		p.margin = d
		return nil
	}}
}

// WithRetry429 sets how many times a Session sends again a request answered
// 429 (0: never) and the longest wait before one: a Retry-After beyond
// maxWait returns the 429 at once. The defaults are 2 times and 60
// seconds, the wait 88Pay asks for.
func WithRetry429(retries int, maxWait time.Duration) Option {
	return Option{"WithRetry429", nil, func(p *Session) error {
		if retries < 0 || maxWait <= 0 {
			return fmt.Errorf("client: WithRetry429 needs retries >= 0 and a positive wait, got %d and %v", retries, maxWait)
		}
		p.retries, p.maxWait = retries, maxWait
		return nil
	}}
}

// NewSession returns a Session that fetches tokens from tokenURL (such as
// "https://api-sandbox.88pay.io/api/auth/token") with apiKey and
// merchantID, and sends every request through base (nil means
// http.DefaultTransport).
//
// It fails if tokenURL is not an absolute https URL (http is allowed for
// localhost and loopback addresses only, for tests), or if apiKey or
// merchantID is not 1 to 1024 printable ASCII characters without spaces.
func NewSession(tokenURL, apiKey, merchantID string, base http.RoundTripper, opts ...Option) (*Session, error) {
	u, err := url.Parse(tokenURL)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("client: NewSession needs an absolute token URL without user info or fragment")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
		return nil, errors.New("client: the token URL must be https (http only for loopback)")
	}
	if err := checkCredential("API key", apiKey); err != nil {
		return nil, err
	}
	if err := checkCredential("merchant ID", merchantID); err != nil {
		return nil, err
	}
	p := &Session{
		tokenURL: u.String(), scheme: u.Scheme, host: u.Host,
		apiKey: apiKey, merchantID: merchantID, base: base,
		now: time.Now, margin: 10 * time.Second, retries: 2, maxWait: time.Minute,
		sleep: sleepContext,
	}
	for _, o := range opts {
		if o.name == "" {
			return nil, errors.New("client: the zero Option")
		}
		if o.session == nil {
			return nil, fmt.Errorf("client: %s does not apply to a Session", o.name)
		}
		if err := o.session(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RoundTrip implements http.RoundTripper.
func (p *Session) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL == nil || !strings.EqualFold(r.URL.Scheme, p.scheme) || !strings.EqualFold(r.URL.Host, p.host) {
		return baseOf(p.base).RoundTrip(r)
	}
	ctx := r.Context()
	replayable := r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
	var stale string // a token the server refused
	refreshed, busy := false, 0
	for sent := false; ; sent = true {
		tok, err := p.token(ctx, stale)
		if err != nil {
			if !sent {
				closeBody(r)
			}
			return nil, err
		}
		r2 := r.Clone(ctx)
		if sent && r.GetBody != nil {
			if r2.Body, err = r.GetBody(); err != nil {
				return nil, fmt.Errorf("client: replaying request body: %w", err)
			}
		}
		r2.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		r2.Header.Set("X-Session-Id", tok.SessionID)
		resp, err := baseOf(p.base).RoundTrip(r2)
		if err != nil || !replayable {
			return resp, err
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			refreshed, stale = true, tok.AccessToken
			discard(resp)
		case resp.StatusCode == http.StatusTooManyRequests && busy < p.retries:
			d, ok := p.backoff(resp.Header, busy)
			if !ok {
				return resp, nil
			}
			busy++
			discard(resp)
			if err := p.sleep(ctx, d); err != nil {
				return nil, err
			}
		default:
			return resp, nil
		}
	}
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has any, so that http.Client.CloseIdleConnections reaches it.
func (p *Session) CloseIdleConnections() { closeIdle(p.base) }

// Token returns the current token, fetching one if there is none or it is
// due for replacement, as RoundTrip does. It is for calls that cannot go
// through the RoundTripper (a WebSocket handshake, say).
func (p *Session) Token(ctx context.Context) (Token, error) {
	return p.token(ctx, "")
}

// token returns a token that is not stale and not due for replacement,
// joining the token request in flight or starting one.
func (p *Session) token(ctx context.Context, stale string) (Token, error) {
	p.mu.Lock()
	if p.tok.AccessToken != "" {
		if p.tok.AccessToken == stale {
			p.tok = cachedToken{} // the server refused it
		} else if p.now().Before(p.tok.refresh) {
			t := p.tok.Token
			p.mu.Unlock()
			return t, nil
		}
	}
	f := p.flight
	if f == nil {
		// The request runs on a context of its own: it must outlive the
		// caller that started it, and must not carry that caller's values
		// (an httptrace.ClientTrace would report to a caller gone away).
		fctx, cancel := context.WithCancel(context.Background())
		p.seq++
		f = &flight{done: make(chan struct{}), cancel: cancel}
		p.flight = f
		go p.fetch(fctx, f, p.seq)
	}
	f.waiters++
	p.mu.Unlock()

	select {
	case <-f.done:
		return f.tok.Token, f.err
	case <-ctx.Done():
		p.mu.Lock()
		f.waiters--
		if f.waiters == 0 && p.flight == f {
			// Nobody waits any more: abandon the request, and let the next
			// caller start afresh.
			p.flight = nil
			f.cancel()
		}
		p.mu.Unlock()
		return Token{}, ctx.Err()
	}
}

// fetch runs one shared token request and publishes its result.
func (p *Session) fetch(ctx context.Context, f *flight, seq uint64) {
	defer f.cancel()
	tok, err := p.fetchToken(ctx)
	tok.seq = seq
	p.mu.Lock()
	if p.flight == f {
		p.flight = nil
	}
	if err == nil && seq > p.tok.seq {
		p.tok = tok
	}
	p.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// fetchToken asks the token endpoint for a token, waiting out 429s as
// Retry429 allows.
func (p *Session) fetchToken(ctx context.Context) (cachedToken, error) {
	for busy := 0; ; busy++ {
		tok, h, err := p.requestToken(ctx)
		var te *TokenError
		if errors.As(err, &te) && te.StatusCode == http.StatusTooManyRequests && busy < p.retries {
			if d, ok := p.backoff(h, busy); ok {
				if err := p.sleep(ctx, d); err != nil {
					return cachedToken{}, err
				}
				continue
			}
		}
		return tok, err
	}
}

// maxTokenBody caps the token endpoint's answer that is read.
const maxTokenBody = 64 << 10

// requestToken makes one token request. It returns the response headers
// of a refusal, for its Retry-After.
func (p *Session) requestToken(ctx context.Context) (cachedToken, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.tokenURL, nil)
	if err != nil {
		return cachedToken{}, nil, fmt.Errorf("client: token request: %w", err)
	}
	req.Header.Set("X-Api-Key", p.apiKey)
	req.Header.Set("X-Merchant-Id", p.merchantID)
	req.Header.Set("Accept", "application/json")
	start := p.now()
	resp, err := baseOf(p.base).RoundTrip(req)
	if err != nil {
		return cachedToken{}, nil, fmt.Errorf("client: token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	if err != nil {
		return cachedToken{}, nil, fmt.Errorf("client: reading token response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		te := &TokenError{StatusCode: resp.StatusCode, Message: envelopeMessage(body)}
		if d, ok := retryAfter(resp.Header, p.now()); ok {
			te.RetryAfter = d
		}
		return cachedToken{}, resp.Header, te
	}
	if len(body) > maxTokenBody {
		return cachedToken{}, nil, fmt.Errorf("%w: over %d bytes", ErrTokenResponse, maxTokenBody)
	}
	tok, err := parseToken(body, start, p.margin)
	return tok, nil, err
}

// parseToken reads the 88Pay success envelope:
//
//	{"status":"Success","code":200,"message":"...","data":{"access_token":"...","expires_in":60,"session_id":"sess_..."}}
//
// An absent expires_in means 88Pay's 60 seconds. The access token and the
// session id must be what apiguard's SessionScheme takes, 1 to 1024
// printable ASCII characters without spaces, else ErrTokenResponse. The
// token is due for replacement margin before it expires, or at half its
// life if that is later.
func parseToken(body []byte, start time.Time, margin time.Duration) (cachedToken, error) {
	var env struct {
		Data *struct {
			AccessToken string   `json:"access_token"`
			ExpiresIn   *float64 `json:"expires_in"`
			SessionID   string   `json:"session_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return cachedToken{}, fmt.Errorf("%w: %w", ErrTokenResponse, err)
	}
	d := env.Data
	switch {
	case d == nil:
		return cachedToken{}, fmt.Errorf("%w: no data", ErrTokenResponse)
	case !wire.ValidToken(d.AccessToken) || !wire.ValidCredential(d.SessionID):
		return cachedToken{}, fmt.Errorf("%w: access_token (1 to %d) and session_id (1 to %d) must be printable ASCII characters without spaces", ErrTokenResponse, wire.MaxTokenLen, wire.MaxCredentialLen)
	}
	life := 60 * time.Second
	if d.ExpiresIn != nil {
		if !(*d.ExpiresIn >= 1 && *d.ExpiresIn <= 86400) {
			return cachedToken{}, fmt.Errorf("%w: expires_in must be 1 to 86400 seconds", ErrTokenResponse)
		}
		life = time.Duration(*d.ExpiresIn * float64(time.Second))
	}
	keep := max(life-margin, life/2)
	return cachedToken{
		Token:   Token{AccessToken: d.AccessToken, SessionID: d.SessionID, Expires: start.Add(life)},
		refresh: start.Add(keep),
	}, nil
}

// envelopeMessage returns the message of an error body in the 88Pay (or
// any {"message":...}) envelope, cut to 200 bytes; "" if there is none.
func envelopeMessage(body []byte) string {
	var env struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	m := env.Message
	if len(m) > 200 {
		m = m[:200]
	}
	return m
}

// backoff returns how long to wait before sending again a request answered
// 429 for the (busy+1)th time, and false when the wait exceeds the bound.
func (p *Session) backoff(h http.Header, busy int) (time.Duration, bool) {
	d, ok := retryAfter(h, p.now())
	if !ok {
		d = time.Second << min(busy, 30)
		return min(d, p.maxWait), true
	}
	return d, d <= p.maxWait
}

// maxRetryAfter caps a parsed Retry-After, so that no value overflows.
const maxRetryAfter = 1 << 31 * time.Second

// retryAfter parses a Retry-After header: delay-seconds, or an HTTP-date
// (a date in the past means no wait). It reports false when the header is
// absent, repeated or malformed.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	vs := h["Retry-After"]
	if len(vs) != 1 {
		return 0, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		var secs int64
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if secs < int64(maxRetryAfter/time.Second) {
				secs = secs*10 + int64(c-'0')
			}
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), maxRetryAfter), true
}

// discard drains a little of a response that will not be returned, so its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

var _ http.RoundTripper = (*Session)(nil)

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
