package apiguard

import (
	"net/http"
	"strings"

	"github.com/apiguard/apiguard/internal/wire"
)

// hasBody reports whether r carries a body: a positive or unknown length.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// isJSONContentType reports whether the Content-Type values say JSON:
// exactly one value, application/json, with parameters that parse and no
// charset other than UTF-8.
func isJSONContentType(vs []string) bool {
	if len(vs) != 1 {
		return false
	}
	m, rest, ok := scanMediaType(vs[0])
	if !ok || rest != "" || m.spec != specJSON {
		return false
	}
	return m.charsetOK
}

// acceptsJSON reports whether the Accept values allow a JSON answer. See
// RequireJSON.
func acceptsJSON(vs []string) bool {
	best, q, present := specNone, 0, false
	for _, v := range vs {
		for {
			m, rest, ok := scanMediaType(v)
			present = present || !m.empty
			if ok && m.spec != specNone && m.spec >= best {
				if m.spec > best {
					best, q = m.spec, m.q
				} else {
					q = max(q, m.q)
				}
			}
			if rest == "" {
				break
			}
			v = rest[1:] // past the comma
		}
	}
	return !present || best != specNone && q > 0
}

// How specifically a media range matches application/json.
const (
	specNone = 0 // another type, or a range that does not match
	specAll  = 1 // */*
	specApp  = 2 // application/*
	specJSON = 3 // application/json
)

// mediaRange is what scanMediaType finds in one element of a media type
// list.
type mediaRange struct {
	spec      int  // how it matches application/json
	q         int  // q-value in thousandths; 1000 if absent
	charsetOK bool // no charset parameter, or a UTF-8 one
	empty     bool // the element was empty (white space only)
}

// scanMediaType scans one media type or media range at the start of s, up
// to a comma outside a quoted string or the end, and returns it with the
// rest of s from that comma on (empty at the end). ok is false if the
// element does not parse; rest then still starts at the next comma.
func scanMediaType(s string) (m mediaRange, rest string, ok bool) {
	m.q, m.charsetOK = 1000, true
	i := skipOWS(s, 0)
	if i == len(s) || s[i] == ',' {
		m.empty = true
		return m, s[i:], false
	}
	typ, i := scanToken(s, i)
	if typ == "" || i == len(s) || s[i] != '/' {
		return m, s[skipElement(s, i):], false
	}
	sub, i := scanToken(s, i+1)
	if sub == "" {
		return m, s[skipElement(s, i):], false
	}
	switch {
	case typ == "*" && sub == "*":
		m.spec = specAll
	case typ == "*":
		return m, s[skipElement(s, i):], false // "*/json" is not a range
	case strings.EqualFold(typ, "application") && sub == "*":
		m.spec = specApp
	case strings.EqualFold(typ, "application") && strings.EqualFold(sub, "json"):
		m.spec = specJSON
	}
	seenQ := false
	for {
		i = skipOWS(s, i)
		if i == len(s) || s[i] == ',' {
			return m, s[i:], true
		}
		if s[i] != ';' {
			return m, s[skipElement(s, i):], false
		}
		i = skipOWS(s, i+1)
		if i == len(s) || s[i] == ',' || s[i] == ';' {
			continue // an empty parameter, as some clients send
		}
		var name, value string
		name, i = scanToken(s, i)
		if name == "" || i == len(s) || s[i] != '=' {
			return m, s[skipElement(s, i):], false
		}
		i++
		if i < len(s) && s[i] == '"' {
			j, ok := scanQuoted(s, i)
			if !ok {
				return m, "", false
			}
			value, i = s[i+1:j-1], j
		} else {
			value, i = scanToken(s, i)
			if value == "" {
				return m, s[skipElement(s, i):], false
			}
		}
		switch {
		case strings.EqualFold(name, "q") && !seenQ:
			seenQ = true
			if m.q, ok = parseQ(value); !ok {
				return m, s[skipElement(s, i):], false
			}
		case strings.EqualFold(name, "charset"):
			m.charsetOK = m.charsetOK && (strings.EqualFold(value, "utf-8") || strings.EqualFold(value, "utf8"))
		}
	}
}

// parseQ parses a qvalue (RFC 9110): "0" to "1" with up to three decimals,
// in thousandths.
func parseQ(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		q += int(s[i]-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// scanToken returns the token starting at s[i] and the index after it.
func scanToken(s string, i int) (string, int) {
	j := i
	for j < len(s) && wire.IsTokenChar(s[j]) {
		j++
	}
	return s[i:j], j
}

// scanQuoted returns the index after the quoted string starting at s[i],
// and false if it is not closed.
func scanQuoted(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(s), false
}

// skipElement returns the index of the next comma at or after s[i] that is
// outside a quoted string, or len(s).
func skipElement(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ',':
			return i
		case '"':
			j, ok := scanQuoted(s, i)
			if !ok {
				return len(s)
			}
			i = j
		default:
			i++
		}
	}
	return i
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}
