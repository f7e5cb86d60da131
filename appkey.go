package apiguard

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/apiguard/apiguard/internal/wire"
)

// The app key errors as a Scheme returns them: the reason first, so that
// it decides the status and text, and the generic key reason after it.
var (
	errNoAppKey  = fmt.Errorf("%w: %w", ErrMissingAppKey, ErrMissingKey)
	errBadAppKey = fmt.Errorf("%w: %w", ErrInvalidAppKey, ErrInvalidKey)

	errMalformedAppKey = &causeError{errBadAppKey, "malformed_key"}
)

// AppKey returns the Scheme of the client-system API's x-app-key header:
// the public key that identifies the client system calling. The key is
// looked up in keys and must be publishable (Client.Publishable; a secret
// server key sent in a header meant for a public one is refused).
//
// No x-app-key is ErrMissingAppKey; an unknown, revoked, expired or server
// key, a malformed one (control characters, spaces, over 1024 bytes), or
// several x-app-key headers is ErrInvalidAppKey; both are 401, and match
// ErrMissingKey and ErrInvalidKey too. A KeyStore failure is ErrUnavailable.
// AppKey has no WWW-Authenticate challenge.
func AppKey(keys KeyStore) Scheme { return &appKeyScheme{keys} }

type appKeyScheme struct{ keys KeyStore }

func (a *appKeyScheme) Validate() error {
	if err := checkKeyStore("AppKey", a.keys); err != nil {
		return err
	}
	return nil
}

func (a *appKeyScheme) Authenticate(r *http.Request) (*Client, error) {
	vs := r.Header["X-App-Key"]
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return nil, errNoAppKey
	case len(vs) > 1 || !wire.ValidCredential(vs[0]):
		return nil, errMalformedAppKey
	}
	c, err := lookupKey(r, a.keys, vs[0], true)
	if errors.Is(err, ErrInvalidKey) {
		return nil, withCause(errBadAppKey, err)
	}
	return c, err
}
