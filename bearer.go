package apiguard

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// Bearer returns the Scheme of server keys (MockPay, the reseller's product
// list): the key is looked up in keys and must be a server key (not
// Client.Publishable).
//
// headers names where the key is read: "Authorization" means the form
// `Authorization: Bearer <key>` (scheme name in any case), any other name a
// header holding the bare key, such as "X-API-Key". The default is
// "Authorization" alone. Keys are never taken from the URL.
//
// No key in any of the places is ErrMissingKey. A key that is unknown,
// revoked, expired, publishable, over 1024 bytes, sent in several headers of one name, or sent in two
// places with different values is ErrInvalidKey: ambiguity is refused, never
// resolved first-wins. A KeyStore failure is ErrUnavailable. New fails on a
// nil KeyStore or a header name that is not an RFC 9110 token.
func Bearer(keys KeyStore, headers ...string) Scheme {
	if len(headers) == 0 {
		headers = []string{"Authorization"}
	}
	b := &bearerScheme{keys: keys, headers: make([]string, len(headers))}
	for i, h := range headers {
		b.headers[i] = http.CanonicalHeaderKey(h)
	}
	return b
}

type bearerScheme struct {
	keys    KeyStore
	headers []string
}

func (b *bearerScheme) Validate() error {
	if err := checkKeyStore("Bearer", b.keys); err != nil {
		return err
	}
	for _, h := range b.headers {
		if !wire.ValidHeaderName(h) {
			return fmt.Errorf("apiguard: Bearer: bad header name %q", h)
		}
	}
	return nil
}

func (b *bearerScheme) Challenge() string { return "Bearer" }

func (b *bearerScheme) Authenticate(r *http.Request) (*Client, error) {
	key, err := b.presented(r.Header)
	if err != nil {
		return nil, err
	}
	return lookupKey(r, b.keys, key, false)
}

// presented returns the one key the request presents.
func (b *bearerScheme) presented(h http.Header) (string, error) {
	var key string
	for _, name := range b.headers {
		vs := h[name]
		switch {
		case len(vs) == 0:
			continue
		case len(vs) > 1:
			return "", errMalformedKey
		}
		v := vs[0]
		if name == "Authorization" {
			var ok bool
			if v, ok = cutScheme(v, "Bearer"); !ok {
				return "", errMalformedKey
			}
		}
		if v == "" {
			continue
		}
		if key != "" && key != v {
			return "", errMalformedKey
		}
		key = v
	}
	if key == "" {
		return "", ErrMissingKey
	}
	if len(key) > wire.MaxCredentialLen {
		return "", errMalformedKey
	}
	// Keys are not otherwise screened: one with spaces or control
	// characters simply matches no stored digest.
	return key, nil
}

// cutScheme returns the credentials of an Authorization value in scheme
// (matched in any case), and false for another scheme. "Bearer" alone gives
// "" and true.
func cutScheme(v, scheme string) (string, bool) {
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", true
	}
	if rest[0] != ' ' {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

// lookupKey finds the client of key in keys and checks that it is a
// publishable key, or a server key.
//
// Its refusals carry their cause (see Decision.Cause): the KeyStore's own,
// when it gives one, and otherwise unknown_key, publishable_key or
// server_key.
func lookupKey(r *http.Request, keys KeyStore, key string, publishable bool) (*Client, error) {
	c, err := timedLookup(r, keys, key)
	switch {
	case err == nil && c != nil && c.Publishable == publishable:
		return c, nil
	case err == nil && c == nil:
		return nil, errUnknownKey
	case err == nil && publishable:
		return nil, errServerKey
	case err == nil:
		return nil, errPublishableKey
	case errors.Is(err, ErrInvalidKey):
		var ce *causeError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, errUnknownKey
	}
	return nil, fmt.Errorf("%w: key store: %w", errKeyStoreFailed, err)
}

// timedLookup is keys.Lookup, timed when an observer watches r.
func timedLookup(r *http.Request, keys KeyStore, key string) (*Client, error) {
	t := timingFrom(r)
	if t == nil {
		return keys.Lookup(r.Context(), key)
	}
	t0 := t.start()
	c, err := keys.Lookup(r.Context(), key)
	t.keyStoreDone(t0)
	return c, err
}
