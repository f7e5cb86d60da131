package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the strict JSON reader behind the body fields of hash
// signatures, on both sides: apiguard's schemes read request bodies with
// it, and the client signs only what they would read. It reads a body
// once, without allocating in the common case, and finds the string values
// of a few top-level members. It is stricter than encoding/json, so that
// the value a signature covers is the value any handler decoding the same
// bytes sees:
//
//   - the body is one JSON object (RFC 8259), nested at most maxJSONDepth
//     deep, with at most maxJSONMembers members at the top level;
//   - strings are I-JSON (RFC 7493): valid UTF-8, no lone surrogate escapes
//     (encoding/json would turn both into U+FFFD);
//   - no two top-level names are equal once unescaped and case-folded the
//     way encoding/json matches struct fields ("ref_id", "REF_ID" and
//     "ref\u005fid" are one name), because encoding/json keeps the last of
//     them where this scanner would sign the first.

const (
	maxJSONDepth   = 512  // nesting of objects and arrays, the body included
	maxJSONMembers = 1000 // members of the top-level object
)

var (
	errJSONSyntax    = errors.New("malformed JSON")
	errJSONNotObject = errors.New("body is not a JSON object")
	errJSONDepth     = errors.New("JSON nested too deep")
	errJSONMembers   = errors.New("too many top-level members")
	errJSONDuplicate = errors.New("duplicate top-level member name")
	errJSONUTF8      = errors.New("JSON string is not valid UTF-8")
	errJSONSize      = errors.New("JSON body over 2 GiB")
)

// A JSONString is a JSON string as it stands in a body that JSONFields
// accepted: its raw text between the quotes, escapes included. The zero
// JSONString is "".
type JSONString struct {
	raw   []byte
	esc   bool // the raw text holds escapes
	ascii bool // the raw text is pure ASCII
}

// nameSpan is where a member name's raw text lies in the body, with the
// flags of its JSONString.
type nameSpan struct {
	start, end int32
	esc, ascii bool
}

// A JSONValue is what JSONFields finds under one name: whether the member
// exists, and whether its value is a string (held in Str) or null. The
// zero JSONValue is an absent member.
type JSONValue struct {
	Found    bool // the member exists, with any value (null included)
	IsString bool // its value is a string, held in Str
	Null     bool // its value is null
	Str      JSONString
}

// Missing reports whether v gives a signed field no value: the member is
// absent, null or "". A server refuses such a field with the field's own
// error; a client signs it as "", so that the server's error is the one
// the caller sees.
func (v JSONValue) Missing() bool {
	return !v.Found || v.Null || v.IsString && len(v.Str.raw) == 0
}

// Decode returns the string's value, unescaped, appended to scratch[:0]
// when it holds escapes; otherwise it returns the raw text, a slice of the
// body, and does not allocate.
func (j JSONString) Decode(scratch []byte) []byte {
	if !j.esc {
		return j.raw
	}
	out := scratch[:0]
	for i := 0; i < len(j.raw); {
		var r rune
		r, i = rawRune(j.raw, i)
		out = utf8.AppendRune(out, r)
	}
	return out
}

// JSONFields reads body, which must be one JSON object, and sets vals[i]
// to what its top level holds under names[i], compared exactly after
// unescaping (a name may be wanted more than once). vals must be as long
// as names. Strings found are slices of body, not copies.
//
// It returns an error for a body that is not an object this package
// accepts (RFC 8259 JSON that encoding/json reads as a handler would):
// malformed JSON or another kind of value; strings that are not I-JSON
// (RFC 7493: invalid UTF-8, lone surrogate escapes); nesting deeper than
// 512 or more than 1000 top-level members; two top-level names equal once
// unescaped and case-folded as encoding/json matches struct fields. The
// values are then unspecified. The error never quotes the body.
func JSONFields(body []byte, names []string, vals []JSONValue) error {
	clear(vals)
	if len(body) > math.MaxInt32 {
		return errJSONSize // names are kept as int32 offsets
	}
	s := jsonScanner{b: body}
	s.ws()
	if s.i == len(s.b) || s.b[s.i] != '{' {
		return errJSONNotObject
	}
	s.i++
	var keyArr [16]nameSpan
	keys := keyArr[:0]
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for {
			if s.i == len(s.b) || s.b[s.i] != '"' {
				return errJSONSyntax
			}
			key, err := s.str()
			if err != nil {
				return err
			}
			if len(keys) == maxJSONMembers {
				return errJSONMembers
			}
			keys = append(keys, nameSpan{int32(s.i - 1 - len(key.raw)), int32(s.i - 1), key.esc, key.ascii})
			want := -1 // the first of names equal to key
			for i, n := range names {
				if !key.esc && string(key.raw) == n || key.esc && key.equal(n) {
					want = i
					break
				}
			}
			s.ws()
			if s.i == len(s.b) || s.b[s.i] != ':' {
				return errJSONSyntax
			}
			s.i++
			s.ws()
			if s.i == len(s.b) {
				return errJSONSyntax
			}
			switch {
			case s.b[s.i] == '"':
				v, err := s.str()
				if err != nil {
					return err
				}
				if want >= 0 {
					vals[want] = JSONValue{Found: true, IsString: true, Str: v}
				}
			default:
				start := s.i
				if err := s.value(); err != nil {
					return err
				}
				if want >= 0 {
					vals[want] = JSONValue{Found: true, Null: string(s.b[start:s.i]) == "null"}
				}
			}
			s.ws()
			if s.i == len(s.b) {
				return errJSONSyntax
			}
			if s.b[s.i] == '}' {
				s.i++
				break
			}
			if s.b[s.i] != ',' {
				return errJSONSyntax
			}
			s.i++
			s.ws()
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return errJSONSyntax
	}
	if duplicateName(body, keys) {
		return errJSONDuplicate
	}
	// A name wanted again gets what the first of its kind got.
	for i := 1; i < len(names); i++ {
		if j := slices.Index(names[:i], names[i]); j >= 0 {
			vals[i] = vals[j]
		}
	}
	return nil
}

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// plain marks the bytes a JSON string holds as they are: printable ASCII
// but for '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string starting at s.b[s.i], which is '"'.
func (s *jsonScanner) str() (JSONString, error) {
	s.i++
	start := s.i
	b := s.b
	if end, ok := plainString(b, start); ok {
		s.i = end + 1
		return JSONString{raw: b[start:end], ascii: true}, nil
	}
	// Escapes, other bytes, or no end: byte by byte where it matters.
	js := JSONString{ascii: true}
	i := s.i
	for {
		i = skipPlain(b, i)
		if i == len(b) {
			return js, errJSONSyntax
		}
		switch c := b[i]; {
		case c == '"':
			js.raw = b[start:i]
			s.i = i + 1
			return js, nil
		case c == '\\':
			js.esc = true
			n, err := escape(b[i:])
			if err != nil {
				return js, err
			}
			i += n
		case c < 0x20:
			return js, errJSONSyntax
		default:
			js.ascii = false
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return js, errJSONUTF8
			}
			i += n
		}
	}
}

// plainString reports whether the text of the string that begins at b[i]
// is plain bytes only, up to its closing quote, and if so where that quote
// is. It reads the string once: a short one eight bytes at a time; a long
// one is taken to end at its first quote, found with bytes.IndexByte, and
// checked by plainText. A string it refuses is read again by str, byte by
// byte where it matters, so that the work on a body is at most a few
// passes over it, whatever it holds.
func plainString(b []byte, i int) (int, bool) {
	// Short strings (names, ids) end within their first 16 bytes.
	for n := 0; n < 2 && i+8 <= len(b); n++ {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			j := i + bits.TrailingZeros64(m)>>3
			return j, b[j] == '"'
		}
		i += 8
	}
	q := bytes.IndexByte(b[i:], '"')
	if q < 0 || !plainText(b[i:i+q]) {
		return 0, false
	}
	return i + q, true
}

// plainText reports whether every byte of b, which holds no '"', is plain.
func plainText(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return false
	}
	// (x - 0x20*lo | x) & hi is zero exactly when no byte of x is below
	// 0x20 or above 0x7f: a byte below 0x20 borrows and sets its own high
	// bit (borrows only ever flag more), and no byte borrows otherwise.
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32 : i+32]
		x0, x1 := binary.LittleEndian.Uint64(w[0:]), binary.LittleEndian.Uint64(w[8:])
		x2, x3 := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[24:])
		acc |= (x0 - 0x20*lo) | x0 | (x1 - 0x20*lo) | x1 | (x2 - 0x20*lo) | x2 | (x3 - 0x20*lo) | x3
	}
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		acc |= (x - 0x20*lo) | x
	}
	if acc&hi != 0 {
		return false
	}
	for ; i < len(b); i++ {
		if !plain[b[i]] {
			return false
		}
	}
	return true
}

// skipPlain returns the index of the first byte of b at or after i that is
// not plain, or len(b).
func skipPlain(b []byte, i int) int {
	// Most strings are short (names, ids): eight bytes at a time first.
	for n := 0; n < 2 && i+8 <= len(b); n++ {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	// A long string: 32 at a time while they are all plain, then eight at
	// a time to the first other one, then one at a time near the end.
	for i+32 <= len(b) {
		w := b[i : i+32 : i+32]
		if special8(binary.LittleEndian.Uint64(w[0:]))|special8(binary.LittleEndian.Uint64(w[8:]))|
			special8(binary.LittleEndian.Uint64(w[16:]))|special8(binary.LittleEndian.Uint64(w[24:])) != 0 {
			break
		}
		i += 32
	}
	for i+8 <= len(b) {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// special8 returns a mask with the high bit set in each byte of x that is
// not plain (below 0x20, above 0x7f, '"' or '\\'), exact up to the lowest
// such byte: (x - n*lo) &^ x & hi flags the bytes below n, for n <= 0x80,
// borrows only ever flagging bytes above a true one.
func special8(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * lo)
	bs := x ^ ('\\' * lo)
	return ((x-0x20*lo)&^x | (q-lo)&^q | (bs-lo)&^bs | x) & hi
}

// escape checks the escape sequence at the start of b and returns its
// length. A \u escape of a surrogate must be a high one followed by a low
// one.
func escape(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, errJSONSyntax
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, errJSONSyntax
	}
	r, ok := hex4(b[2:])
	if !ok {
		return 0, errJSONSyntax
	}
	switch {
	case r < 0xd800 || r > 0xdfff:
		return 6, nil
	case r >= 0xdc00:
		return 0, errJSONUTF8 // a low surrogate alone
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return 0, errJSONUTF8 // a high surrogate alone
	}
	lo, ok := hex4(b[8:])
	if !ok {
		return 0, errJSONSyntax
	}
	if lo < 0xdc00 || lo > 0xdfff {
		return 0, errJSONUTF8
	}
	return 12, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// rawRune decodes the rune at raw[i] of a string str has accepted, escapes
// included, and returns it with the index of the next one.
func rawRune(raw []byte, i int) (rune, int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), i + 1
		}
		r, n := utf8.DecodeRune(raw[i:])
		return r, i + n
	}
	switch raw[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r, _ := hex4(raw[i+2:])
		if utf16.IsSurrogate(r) {
			lo, _ := hex4(raw[i+8:])
			return utf16.DecodeRune(r, lo), i + 12
		}
		return r, i + 6
	}
	return rune(raw[i+1]), i + 2 // '"', '\\', '/'
}

// equal reports whether the string's value is name.
func (j JSONString) equal(name string) bool {
	if !j.esc {
		return string(j.raw) == name
	}
	i, k := 0, 0
	for i < len(j.raw) {
		var r rune
		r, i = rawRune(j.raw, i)
		nr, n := utf8.DecodeRuneInString(name[k:])
		if n == 0 || nr != r {
			return false
		}
		k += n
	}
	return k == len(name)
}

// value scans one JSON value of any kind, nested objects and arrays
// included, without recursion. The object being scanned by JSONFields is
// the first level.
func (s *jsonScanner) value() error {
	// open holds one bit per open container below the top-level object: 1
	// for an object, 0 for an array.
	var open [maxJSONDepth / 64]uint64
	depth := 0
	b := s.b
	for {
		// A value.
		if s.i == len(b) {
			return errJSONSyntax
		}
		switch c := b[s.i]; {
		case c == '{' || c == '[':
			if depth+2 > maxJSONDepth {
				return errJSONDepth
			}
			obj := c == '{'
			if obj {
				open[depth/64] |= 1 << (depth % 64)
			} else {
				open[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			s.i++
			s.ws()
			if s.i < len(b) && (obj && b[s.i] == '}' || !obj && b[s.i] == ']') {
				s.i++
				depth--
				break
			}
			if obj {
				if err := s.member(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case c == '-' || c >= '0' && c <= '9':
			if !s.number() {
				return errJSONSyntax
			}
		case c == 't':
			if !s.literal("true") {
				return errJSONSyntax
			}
		case c == 'f':
			if !s.literal("false") {
				return errJSONSyntax
			}
		case c == 'n':
			if !s.literal("null") {
				return errJSONSyntax
			}
		default:
			return errJSONSyntax
		}
		// After a value: close containers, or go on to the next element.
		for {
			if depth == 0 {
				return nil
			}
			s.ws()
			if s.i == len(b) {
				return errJSONSyntax
			}
			obj := open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := b[s.i]
			if obj && c == '}' || !obj && c == ']' {
				s.i++
				depth--
				continue
			}
			if c != ',' {
				return errJSONSyntax
			}
			s.i++
			s.ws()
			if obj {
				if err := s.member(); err != nil {
					return err
				}
			}
			break
		}
	}
}

// member scans `"name" :` and the blanks after it, inside a nested object.
func (s *jsonScanner) member() error {
	if s.i == len(s.b) || s.b[s.i] != '"' {
		return errJSONSyntax
	}
	if _, err := s.str(); err != nil {
		return err
	}
	s.ws()
	if s.i == len(s.b) || s.b[s.i] != ':' {
		return errJSONSyntax
	}
	s.i++
	s.ws()
	return nil
}

func (s *jsonScanner) number() bool {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// duplicateName reports whether two of keys are equal as encoding/json
// matches names: unescaped, then case-folded.
func duplicateName(body []byte, spans []nameSpan) bool {
	keys := func(i int) JSONString {
		k := spans[i]
		return JSONString{raw: body[k.start:k.end], esc: k.esc, ascii: k.ascii}
	}
	if len(spans) <= 16 {
		for i := range spans {
			for j := i + 1; j < len(spans); j++ {
				// Plain ASCII names of different lengths differ.
				a, b := spans[i], spans[j]
				if a.end-a.start != b.end-b.start && a.ascii && b.ascii && !a.esc && !b.esc {
					continue
				}
				if foldEqual(keys(i), keys(j)) {
					return true
				}
			}
		}
		return false
	}
	// Many names: sort their folded hashes (keyed by a per-process seed, so
	// that no one can choose colliding names) and compare neighbours.
	type hashed struct {
		h uint64
		i int
	}
	hs := make([]hashed, len(spans))
	for i := range spans {
		hs[i] = hashed{foldHash(keys(i)), i}
	}
	slices.SortFunc(hs, func(a, b hashed) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	for i := 1; i < len(hs); i++ {
		if hs[i].h != hs[i-1].h {
			continue
		}
		// Every member of a run of equal hashes against the first.
		for j := i; j < len(hs) && hs[j].h == hs[i-1].h; j++ {
			if foldEqual(keys(hs[i-1].i), keys(hs[j].i)) {
				return true
			}
		}
	}
	return false
}

// foldRune returns the smallest rune of r's case-folding orbit, as
// encoding/json folds names (so 'k', 'K' and the Kelvin sign are one).
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

func foldEqual(a, b JSONString) bool {
	if a.ascii && b.ascii && !a.esc && !b.esc {
		return len(a.raw) == len(b.raw) && asciiFoldEqual(a.raw, b.raw)
	}
	i, k := 0, 0
	for i < len(a.raw) && k < len(b.raw) {
		var ra, rb rune
		ra, i = rawRune(a.raw, i)
		rb, k = rawRune(b.raw, k)
		if ra != rb && foldRune(ra) != foldRune(rb) {
			return false
		}
	}
	return i == len(a.raw) && k == len(b.raw)
}

func asciiFoldEqual(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

var foldSeed = maphash.MakeSeed()

func foldHash(k JSONString) uint64 {
	var h maphash.Hash
	h.SetSeed(foldSeed)
	var buf [4]byte
	for i := 0; i < len(k.raw); {
		var r rune
		r, i = rawRune(k.raw, i)
		r = foldRune(r)
		buf[0], buf[1], buf[2], buf[3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
		h.Write(buf[:])
	}
	return h.Sum64()
}
