package apiguard

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// Basic returns the Scheme of Midtrans' server key: `Authorization: Basic
// base64(server_key + ":")`, the server key as the username and an empty
// password. The key is looked up in keys and must be a server key (not
// Client.Publishable).
//
// No Authorization header is ErrMissingKey. Several Authorization headers,
// another scheme, bad base64 (standard alphabet, padded), a missing colon,
// an empty username, a non-empty password, or a publishable client key is
// ErrInvalidKey.
func Basic(keys KeyStore) Scheme { return &basicScheme{keys} }

type basicScheme struct{ keys KeyStore }

func (b *basicScheme) Validate() error {
	if err := checkKeyStore("Basic", b.keys); err != nil {
		return err
	}
	return nil
}

func (b *basicScheme) Challenge() string { return `Basic realm="api"` }

func (b *basicScheme) Authenticate(r *http.Request) (*Client, error) {
	key, err := basicKey(r.Header)
	if err != nil {
		return nil, err
	}
	return lookupKey(r, b.keys, key, false)
}

// basicKey returns the username of Basic credentials with an empty password.
func basicKey(h http.Header) (string, error) {
	vs := h["Authorization"]
	switch {
	case len(vs) == 0:
		return "", ErrMissingKey
	case len(vs) > 1:
		return "", errMalformedKey
	}
	enc, ok := cutScheme(vs[0], "Basic")
	if !ok || enc == "" || len(enc) > 2*wire.MaxCredentialLen {
		return "", errMalformedKey
	}
	var buf [2 * wire.MaxCredentialLen]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(enc))
	if err != nil {
		return "", errMalformedKey
	}
	user, pass, ok := strings.Cut(string(buf[:n]), ":")
	if !ok || pass != "" || !wire.ValidCredential(user) {
		return "", errMalformedKey
	}
	return user, nil
}
