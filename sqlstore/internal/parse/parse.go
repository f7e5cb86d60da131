// Package parse reads what sqlstore takes from operators and from the
// network: database URLs, address ranges, ids and notification payloads.
// It depends on the standard library only, so that its fuzz targets run
// fast.
package parse

import (
	"errors"
	"fmt"
)

// ErrInvalid is sqlstore.ErrInvalid: an argument is malformed.
var ErrInvalid = errors.New("sqlstore: invalid argument")

// MaxIDLen is the longest id, role or scope.
const MaxIDLen = 128

// ID checks an id an operator chose: 1 to 128 printable ASCII
// characters other than space.
func ID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s longer than %d characters", ErrInvalid, what, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return fmt.Errorf("%w: %s %q holds %q (printable ASCII only, no spaces)", ErrInvalid, what, Clip(id), id[i])
		}
	}
	return nil
}

// Clip shortens operator input quoted in an error.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
