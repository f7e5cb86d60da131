package apiguard

import (
	"net/http"
	"net/url"

	"github.com/apiguard/apiguard/internal/wire"
)

// ClientKey returns the Scheme of publishable client keys sent in the URL
// query parameter client_key, for front-end routes such as Midtrans' GET
// /v2/token. The key is looked up in keys and must be publishable
// (Client.Publishable): a server key is refused here, as a client key is
// refused by Bearer and Basic.
//
// No client_key is ErrMissingKey; a client_key given twice, a query that
// does not parse, or a key that is not a live publishable key is
// ErrInvalidKey.
func ClientKey(keys KeyStore) Scheme { return &clientKeyScheme{keys} }

type clientKeyScheme struct{ keys KeyStore }

func (c *clientKeyScheme) Validate() error {
	if err := checkKeyStore("ClientKey", c.keys); err != nil {
		return err
	}
	return nil
}

func (c *clientKeyScheme) Authenticate(r *http.Request) (*Client, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errMalformedKey
	}
	vs := q["client_key"]
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return nil, ErrMissingKey
	case len(vs) > 1 || !wire.ValidCredential(vs[0]):
		return nil, errMalformedKey
	}
	return lookupKey(r, c.keys, vs[0], true)
}
