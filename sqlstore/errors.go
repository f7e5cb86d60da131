package sqlstore

import (
	"errors"

	"github.com/apiguard/apiguard/sqlstore/internal/parse"
)

// Reasons a lifecycle call refuses a change. Errors wrap them with the
// details (never a secret), so callers match them with errors.Is. A call
// that fails changes nothing.
var (
	// ErrUnknownKey: no key has the given key id.
	ErrUnknownKey = errors.New("sqlstore: no such key")
	// ErrUnknownClient: no key was ever issued to the given client.
	ErrUnknownClient = errors.New("sqlstore: no such client")
	// ErrRevoked: the key is revoked and can no longer change.
	ErrRevoked = errors.New("sqlstore: key revoked")
	// ErrReplaced: the key was already rotated; rotate its replacement.
	ErrReplaced = errors.New("sqlstore: key already rotated")
	// ErrExists: a key with the same key id or the same secret is stored.
	ErrExists = errors.New("sqlstore: key exists")
	// ErrNotRegistered: an address range to remove is not registered for
	// the key.
	ErrNotRegistered = errors.New("sqlstore: address not registered")
	// ErrInvalid: an argument is malformed (an empty client id, a prefix
	// with host bits set, a scope with a space, ...).
	ErrInvalid = parse.ErrInvalid
)
