package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidHeaderName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"X-API-Key", true},
		{"x-api-key", true},
		{"Authorization", true},
		{"X_Ref.1", true},
		{"!#$%&'*+-.^_`|~09azAZ", true},
		{"", false},
		{"X API Key", false},
		{"a:b", false},
		{"X-Ref\t", false},
		{"X-Ref\r\n", false},
		{"X(Ref)", false},
		{`X"Ref"`, false},
		{"X/Ref", false},
		{"X@Ref", false},
		{"X{Ref}", false},
		{"Ünï", false},
		{"X-Ref\x7f", false},
		{"X-Ref\x00", false},
	} {
		if got := ValidHeaderName(tc.name); got != tc.ok {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
	// Byte by byte, against RFC 9110's tchar.
	const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for c := range 256 {
		if got, want := ValidHeaderName(string(rune(c))[:1]+"a"), strings.IndexByte(tchar, byte(c)) >= 0; c < 0x80 && got != want {
			t.Errorf("byte %#x: %v, want %v", c, got, want)
		}
		if c >= 0x80 && ValidHeaderName(string([]byte{byte(c)})) {
			t.Errorf("byte %#x accepted", c)
		}
	}
}

func TestValidCredential(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		ok      bool
	}{
		{"key", "sandbox_sk_test_xxxxxxxx", true},
		{"punctuation", `!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, true},
		{"one byte", "k", true},
		{"1024 bytes", strings.Repeat("k", MaxCredentialLen), true},
		{"empty", "", false},
		{"1025 bytes", strings.Repeat("k", MaxCredentialLen+1), false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"newline", "a\r\nX-Evil: 1", false},
		{"DEL", "a\x7f", false},
		{"non-ASCII", "kéy", false},
		{"NUL", "a\x00", false},
	} {
		if got := ValidCredential(tc.s); got != tc.ok {
			t.Errorf("%s: ValidCredential = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestValidFieldValue(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		ok      bool
	}{
		{"empty", "", true},
		{"ASCII", "REF_123456789", true},
		{"spaces", " a b ", true},
		{"UTF-8", "héllo 😀 ǅ", true},
		{"NBSP, first after C1", "a\u00a0", true},
		{"U+FFFD written out", "\ufffd", true},
		{"newline", "a\nb", false},
		{"tab", "a\tb", false},
		{"NUL", "a\x00", false},
		{"DEL", "a\x7f", false},
		{"C1 NEL", "a\u0085", false},
		{"C1 last", "a\u009f", false},
		{"invalid UTF-8", "a\xc3", false},
		{"lone continuation", "\x80", false},
		{"encoded surrogate", "\xed\xa0\x80", false},
		{"overlong", "\xc0\xaf", false},
	} {
		if got := ValidFieldValue(tc.v); got != tc.ok {
			t.Errorf("%s: ValidFieldValue(%q) = %v, want %v", tc.name, tc.v, got, tc.ok)
		}
		if got := ValidFieldValue([]byte(tc.v)); got != tc.ok {
			t.Errorf("%s: ValidFieldValue([]byte(%q)) = %v, want %v", tc.name, tc.v, got, tc.ok)
		}
	}
}

// FuzzValidFieldValue checks the rule against its statement, rune by rune,
// for strings and byte slices alike.
func FuzzValidFieldValue(f *testing.F) {
	for _, s := range []string{"", "REF_1", "a\nb", "\u0085", "\u00a0", "\xff", "\xed\xa0\x80", "😀", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want := utf8.ValidString(v)
		for _, r := range v {
			if r < 0x20 || r >= 0x7f && r < 0xa0 {
				want = false
			}
		}
		if got := ValidFieldValue(v); got != want {
			t.Fatalf("ValidFieldValue(%q) = %v, want %v", v, got, want)
		}
		if got := ValidFieldValue([]byte(v)); got != want {
			t.Fatalf("ValidFieldValue([]byte(%q)) = %v, want %v", v, got, want)
		}
	})
}

// TestSignedMessage pins both messages and their sums to known answers:
// the reseller's example (seed 001) and an HMAC computed with Python's
// hmac module.
func TestSignedMessage(t *testing.T) {
	fields := []Value{{B: []byte("REF_123456789")}, {S: "14500"}}
	if got, want := string(AppendHashInput([]byte("x"), "topup_demo_key_gold", fields)), "xtopup_demo_key_goldREF_12345678914500"; got != want {
		t.Errorf("AppendHashInput = %q, want %q", got, want)
	}
	if got, want := string(AppendHMACMessage([]byte("x"), fields)), "xREF_123456789\n14500"; got != want {
		t.Errorf("AppendHMACMessage = %q, want %q", got, want)
	}
	if got := string(AppendHMACMessage(nil, fields[:1])); got != "REF_123456789" {
		t.Errorf("AppendHMACMessage of one field = %q", got)
	}
	if got := string(AppendHMACMessage(nil, []Value{{}, {}})); got != "\n" {
		t.Errorf("AppendHMACMessage of two empty fields = %q", got)
	}

	// sha256sum of "topup_demo_key_goldTRX_123456789".
	if d := HashSum("topup_demo_key_gold", []Value{{S: "TRX_123456789"}}); hex.EncodeToString(d[:]) != "37c6df5c5e0f209029897e241c216247a8a633ab79abe5369fd342ff0a998038" {
		t.Errorf("HashSum = %x", d)
	}
	// python3: hmac.new(b"whsec_demo", b"1764000000\nabc\nREF_1", hashlib.sha256).hexdigest()
	if d := HMACSum("whsec_demo", []Value{{S: "1764000000"}, {S: "abc"}, {B: []byte("REF_1")}}); hex.EncodeToString(d[:]) != "123f905482a0f955c132eb6ca6b8a0927109bcb5867eba4dac7fbad1c4838422" {
		t.Errorf("HMACSum = %x", d)
	}

	// Long inputs, past the stack buffer.
	long := strings.Repeat("é", 300)
	if d, want := HashSum("k", []Value{{S: long}, {B: []byte(long)}}), sha256.Sum256([]byte("k"+long+long)); d != want {
		t.Errorf("HashSum of a long input = %x, want %x", d, want)
	}
	m := hmac.New(sha256.New, []byte("k"))
	m.Write([]byte(long + "\n" + long))
	if d := HMACSum("k", []Value{{S: long}, {B: []byte(long)}}); !hmac.Equal(d[:], m.Sum(nil)) {
		t.Errorf("HMACSum of a long input = %x", d)
	}
}

// TestHashSumAllocs: the server's hot path computes a hash signature
// without allocating.
func TestHashSumAllocs(t *testing.T) {
	fields := []Value{{B: []byte("REF_123456789")}, {S: "14500"}}
	if n := testing.AllocsPerRun(100, func() { HashSum("topup_demo_key_gold", fields) }); n != 0 {
		t.Errorf("HashSum allocates %v times", n)
	}
	ok := true
	if n := testing.AllocsPerRun(100, func() {
		ok = ValidFieldValue(fields[1].S) && ValidFieldValue(fields[0].B) &&
			ValidHeaderName("X-API-Key") && ValidCredential("topup_demo_key_gold")
	}); n != 0 || !ok {
		t.Errorf("the checks allocate %v times (all passed: %v)", n, ok)
	}
}
