// Package client signs outgoing requests for the APIs that apiguard guards:
// server keys sent as Bearer tokens or in a header of their own, Basic with a
// server key (Midtrans), the reseller's hash signatures (SHA-256 over the
// key and fields of the request), HMAC signatures whose secret is never
// sent, and the 88Pay flow of short-lived tokens and session ids.
//
// Each scheme is a Signer, and Transport turns a Signer into an
// http.RoundTripper for an http.Client:
//
//	s, err := client.Bearer(os.Getenv("MOCKPAY_KEY"))
//	if err != nil { ... }
//	hc := &http.Client{Transport: client.Transport(s, nil)}
//
// The 88Pay flow needs more than a signature (a token to fetch, cache and
// refresh), so Session is a RoundTripper of its own.
//
// The RoundTrippers never modify the caller's request: they sign a clone.
// They sign every request they carry, redirects to other hosts included
// (Session excepted, which signs only requests to its token endpoint's
// origin), so give each API an http.Client of its own. They are safe for
// concurrent use.
//
// The rules of the wire (valid header names and credentials, what a signed
// field may hold, the message a signature covers, the strict reading of
// JSON bodies) are apiguard's own, shared with its schemes: a Signer
// refuses, with an error, to sign what the server would refuse. Beyond
// the standard library the package imports only that shared code.
package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// A Signer adds credentials to an outgoing request.
//
// Sign may set headers of r and may replace r.Body with a copy holding the
// same bytes (setting GetBody and ContentLength), so it must be given a
// request the caller is free to change: Transport gives it a clone. It
// must be safe for concurrent use.
type Signer interface {
	Sign(r *http.Request) error
}

// Transport returns an http.RoundTripper that signs a clone of each request
// with s and sends it through base. A nil base means http.DefaultTransport.
//
// When s fails (or is nil) the request is not sent and RoundTrip returns
// an error (http.Client wraps it in a *url.Error). The RoundTripper is safe for
// concurrent use if s and base are.
func Transport(s Signer, base http.RoundTripper) http.RoundTripper {
	return &transport{s: s, base: base}
}

type transport struct {
	s    Signer
	base http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.s == nil {
		closeBody(r)
		return nil, errors.New("client: Transport has no Signer")
	}
	r2 := r.Clone(r.Context())
	if err := t.s.Sign(r2); err != nil {
		closeBody(r)
		return nil, err
	}
	return baseOf(t.base).RoundTrip(r2)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has any, so that http.Client.CloseIdleConnections reaches it.
func (t *transport) CloseIdleConnections() { closeIdle(t.base) }

func baseOf(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

func closeIdle(rt http.RoundTripper) {
	if c, ok := baseOf(rt).(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// closeBody closes the body of a request that will not be sent, as the
// RoundTripper contract requires.
func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// headerSigner sets one header to a value fixed at construction.
type headerSigner struct {
	name, value string
}

func (h *headerSigner) Sign(r *http.Request) error {
	r.Header.Set(h.name, h.value)
	return nil
}

// Bearer returns a Signer that sends key as `Authorization: Bearer <key>`,
// as MockPay and the reseller's product list expect. It fails if key is not
// 1 to 1024 printable ASCII characters without spaces.
func Bearer(key string) (Signer, error) {
	if err := checkCredential("Bearer key", key); err != nil {
		return nil, err
	}
	return &headerSigner{"Authorization", "Bearer " + key}, nil
}

// APIKey returns a Signer that sends key, bare, in the header named header
// (such as "X-API-Key"). It fails if header is not a valid header name or
// key is not 1 to 1024 printable ASCII characters without spaces.
func APIKey(header, key string) (Signer, error) {
	if !wire.ValidHeaderName(header) {
		return nil, fmt.Errorf("client: bad header name %q", header)
	}
	if err := checkCredential("API key", key); err != nil {
		return nil, err
	}
	return &headerSigner{http.CanonicalHeaderKey(header), key}, nil
}

// Basic returns a Signer of Midtrans' server key: `Authorization: Basic
// base64(serverKey + ":")`, the key as the username and an empty password.
// It fails if serverKey is not 1 to 1024 printable ASCII characters without
// spaces, or holds a colon (which would end the username).
func Basic(serverKey string) (Signer, error) {
	if err := checkCredential("server key", serverKey); err != nil {
		return nil, err
	}
	if strings.Contains(serverKey, ":") {
		return nil, errors.New("client: a Basic server key cannot hold ':'")
	}
	return &headerSigner{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(serverKey+":"))}, nil
}

// checkCredential fails unless s is 1 to 1024 printable ASCII characters
// without spaces, as apiguard's schemes require of every credential. It
// never puts s in the error.
func checkCredential(what, s string) error {
	if !wire.ValidCredential(s) {
		return fmt.Errorf("client: %s must be 1 to %d printable ASCII characters without spaces", what, wire.MaxCredentialLen)
	}
	return nil
}

// ErrBodyTooLarge is returned by a Signer that must read a request body
// longer than its limit.
var ErrBodyTooLarge = errors.New("client: request body too large to sign")

// readBody reads r.Body once, at most limit bytes, closes it, and puts back
// a copy holding the same bytes with GetBody and ContentLength set, so the
// request can still be sent, and sent again.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		r.Body.Close()
		return nil, ErrBodyTooLarge
	}
	n := r.ContentLength
	if n < 0 || n > 64<<10 {
		n = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("client: reading request body: %w", err)
	case int64(buf.Len()) > limit:
		return nil, ErrBodyTooLarge
	}
	body := buf.Bytes()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body, r.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	return body, nil
}
