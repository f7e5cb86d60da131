// Package wire holds the rules of what apiguard's schemes and its client
// send over the wire, written once so that the server and the client never
// disagree: which header names and credentials are valid, what a signed
// field may hold, the message a hash or HMAC signature covers, and the
// strict reader of the JSON bodies whose members are signed.
//
// The server refuses what breaks these rules; the client refuses to sign
// it. The functions are safe for concurrent use and, on valid input, do
// not allocate unless they say so.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// MaxCredentialLen is the longest credential, in bytes, that ValidCredential
// accepts.
const MaxCredentialLen = 1024

// ValidHeaderName reports whether s is a valid header field name: an RFC
// 9110 token, one or more of the ASCII letters, digits and
// !#$%&'*+-.^_`|~.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// IsTokenChar reports whether c may appear in an RFC 9110 token (a header
// name, a media type, a parameter name).
func IsTokenChar(c byte) bool { return tokenChar[c] }

// tokenChar marks the bytes of an RFC 9110 token.
var tokenChar = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range `"(),/:;<=>?@[\]{}` {
		t[c] = false
	}
	return t
}()

// ValidCredential reports whether s may be a credential (an API key, a
// server key, a merchant id, an access token or a session id): 1 to
// MaxCredentialLen bytes of printable ASCII without spaces. Such a value
// travels as it is in a header and needs no quoting.
func ValidCredential(s string) bool { return printable(s, MaxCredentialLen) }

// MaxTokenLen caps a session token (a JWT): issuance refuses to make a
// longer one, and verification to read one.
const MaxTokenLen = 4096

// ValidToken reports whether s may be a session token as presented: 1 to
// MaxTokenLen bytes of printable ASCII without spaces.
func ValidToken(s string) bool { return printable(s, MaxTokenLen) }

// printable reports whether s is 1 to max bytes of printable ASCII without
// spaces.
func printable(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether v may be the value of a field that a
// signature covers: valid UTF-8 without control characters (C0, DEL or
// C1). Refusing them keeps the newlines between the fields of an HMAC
// message unambiguous, and rules out the padding that a length-extension
// attack on a hash signature needs (it holds 0x00 bytes). The empty value
// is valid here; whether a field may be empty is the scheme's rule.
func ValidFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune([]byte(v[i:min(i+utf8.UTFMax, len(v))]))
		if r == utf8.RuneError && n <= 1 || r >= 0x80 && r < 0xa0 {
			return false
		}
		i += n
	}
	return true
}

// A Value is the value of one signed field: the bytes of B followed by
// those of S. Set one of them, B for a value read from a body, S for one
// read from a header, a query, a path or a function, so that neither has
// to be copied into the other's type. The zero Value is "".
type Value struct {
	B []byte
	S string
}

// AppendHashInput appends to dst the input of a hash signature as the
// reseller's API defines it, SHA256(key + field1 + field2 + ...): key and
// the values of fields, concatenated as they are, nothing between them.
// HashSum hashes it.
func AppendHashInput(dst []byte, key string, fields []Value) []byte {
	dst = append(dst, key...)
	for _, f := range fields {
		dst = append(dst, f.B...)
		dst = append(dst, f.S...)
	}
	return dst
}

// AppendHMACMessage appends to dst the message of an HMAC signature: the
// values of fields joined by newlines ("\n"), which valid field values
// cannot hold. The secret is not part of it. HMACSum authenticates it.
func AppendHMACMessage(dst []byte, fields []Value) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, f.B...)
		dst = append(dst, f.S...)
	}
	return dst
}

// HashSum returns the hash signature of fields made with key:
// SHA-256 of AppendHashInput. It does not allocate when key and fields
// hold at most 256 bytes in all.
func HashSum(key string, fields []Value) [sha256.Size]byte {
	var buf [256]byte
	return sha256.Sum256(AppendHashInput(buf[:0], key, fields))
}

// HMACSum returns the HMAC signature of fields made with secret:
// HMAC-SHA256 keyed by secret over AppendHMACMessage.
func HMACSum(secret string, fields []Value) [sha256.Size]byte {
	var d [sha256.Size]byte
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(AppendHMACMessage(nil, fields))
	m.Sum(d[:0])
	return d
}

// CheckPrefix returns p as the stores keep it (an IPv4-mapped IPv6 prefix
// of 96 bits or more as its IPv4 prefix: client IPs are always unmapped),
// or an error if p is invalid, has a zone, or has host bits set: an
// operator who writes 203.0.113.7/24 to allow one host would allow the
// whole network, so the error shows both intended forms.
func CheckPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid address range %v", p)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: an address range has no zone", p)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set: write %s for the one address, or %s for the network",
			p, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()), m)
	}
	return p, nil
}
