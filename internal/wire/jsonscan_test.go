package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONFields(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		return b.String() + extra + "}"
	}
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + "}" }
	tests := []struct {
		name string
		body string
		err  error  // nil: accepted
		a, b string // values of "a" and "b" when strings
	}{
		{"empty object", `{}`, nil, "", ""},
		{"blanks", " \t\r\n{ \"a\" : \"x\" , \"b\":\"y\" } \n", nil, "x", "y"},
		{"escapes", `{"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","b":"\u0041"}`, nil, "\"\\/\b\f\n\r\té😀", "A"},
		{"escaped name", `{"\u0061":"x"}`, nil, "x", ""},
		{"utf-8", `{"a":"héllo 😀","b":"ǅ"}`, nil, "héllo 😀", "ǅ"},
		{"other values", `{"n":-0.5e+10,"t":true,"f":false,"z":null,"o":{"a":[1,{"b":[]},"c"]},"e":[],"a":"x"}`, nil, "x", ""},
		{"nested duplicates allowed", `{"o":{"a":1,"a":2},"a":"x"}`, nil, "x", ""},
		{"many members", many(999, `"a":"x"`), nil, "x", ""},
		{"deep", deep(511), nil, "", ""},
		{"too many members", many(1000, `"a":"x"`), errJSONMembers, "", ""},
		{"too deep", deep(512), errJSONDepth, "", ""},
		{"duplicate", `{"a":"x","a":"y"}`, errJSONDuplicate, "", ""},
		{"duplicate folded", `{"a":"x","A":"y"}`, errJSONDuplicate, "", ""},
		{"duplicate escaped", `{"ab":"x","\u0061b":"y"}`, errJSONDuplicate, "", ""},
		{"duplicate Kelvin", `{"k":"x","` + "\u212a" + `":"y"}`, errJSONDuplicate, "", ""},
		{"duplicate long s", `{"s":"x","` + "\u017f" + `":"y"}`, errJSONDuplicate, "", ""},
		{"duplicate among many", many(40, `"K20":1`), errJSONDuplicate, "", ""},
		{"duplicate Kelvin among many", many(40, `"`+"\u212a"+`7":1`), errJSONDuplicate, "", ""},
		{"no duplicate among many", many(40, `"k40":1`), nil, "", ""},
		{"array", `[]`, errJSONNotObject, "", ""},
		{"string", `"a"`, errJSONNotObject, "", ""},
		{"nothing", ``, errJSONNotObject, "", ""},
		{"unclosed", `{"a":"x"`, errJSONSyntax, "", ""},
		{"unclosed string", `{"a":"x}`, errJSONSyntax, "", ""},
		{"trailing comma", `{"a":"x",}`, errJSONSyntax, "", ""},
		{"trailing comma array", `{"a":[1,]}`, errJSONSyntax, "", ""},
		{"missing colon", `{"a" "x"}`, errJSONSyntax, "", ""},
		{"unquoted name", `{a:"x"}`, errJSONSyntax, "", ""},
		{"single quotes", `{'a':'x'}`, errJSONSyntax, "", ""},
		{"mismatched", `{"a":[}`, errJSONSyntax, "", ""},
		{"mismatched 2", `{"a":{]}`, errJSONSyntax, "", ""},
		{"leading zero", `{"a":01}`, errJSONSyntax, "", ""},
		{"bare minus", `{"a":-}`, errJSONSyntax, "", ""},
		{"dot", `{"a":1.}`, errJSONSyntax, "", ""},
		{"exponent", `{"a":1e}`, errJSONSyntax, "", ""},
		{"plus", `{"a":+1}`, errJSONSyntax, "", ""},
		{"bad literal", `{"a":nul}`, errJSONSyntax, "", ""},
		{"control character", "{\"a\":\"x\ty\"}", errJSONSyntax, "", ""},
		{"bad escape", `{"a":"\x"}`, errJSONSyntax, "", ""},
		{"short unicode escape", `{"a":"\u12"}`, errJSONSyntax, "", ""},
		{"lone high surrogate", `{"a":"\ud83d"}`, errJSONUTF8, "", ""},
		{"lone low surrogate", `{"a":"\ude00"}`, errJSONUTF8, "", ""},
		{"high then not low", `{"a":"\ud83d\u0041"}`, errJSONUTF8, "", ""},
		{"invalid utf-8", "{\"a\":\"\xc3\"}", errJSONUTF8, "", ""},
		{"encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", errJSONUTF8, "", ""},
		{"two objects", `{}{}`, errJSONSyntax, "", ""},
		{"garbage after", `{} x`, errJSONSyntax, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals := make([]JSONValue, 2)
			err := JSONFields([]byte(tc.body), []string{"a", "b"}, vals)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if json.Valid([]byte(tc.body)) != true {
				t.Error("accepted what encoding/json refuses")
			}
			for i, want := range []string{tc.a, tc.b} {
				var got string
				if vals[i].IsString {
					got = string(vals[i].Str.Decode(nil))
				}
				if got != want {
					t.Errorf("value %d = %q, want %q", i, got, want)
				}
			}
		})
	}
}

// FuzzJSONFields checks the scanner against encoding/json: it never
// accepts what encoding/json refuses, calls nothing a syntax error that
// encoding/json accepts, finds the values encoding/json finds (into a map,
// and into a struct, which matches names in any case), and refuses exactly
// the bodies with top-level names encoding/json would take for one.
func FuzzJSONFields(f *testing.F) {
	for _, s := range []string{
		`{"ref_id":"REF_1","produk_id":"1"}`, `{"a":"x","A":"y"}`, `{"ref\u005fid":"x"}`, `{"a":[1,{"b":null}],"c":true}`,
		`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d"}`, "{\"a\":\"\xff\"}", `[]`, `{"REF_ID":"x"}`, `{"a":1e5,"b":-0.1}`, `{} `,
		`{"` + "\u212a" + `":"x","k":"y"}`,
	} {
		f.Add([]byte(s))
	}
	names := []string{"ref_id", "a", "k", "a"} // a name wanted twice gets one value
	f.Fuzz(func(t *testing.T, body []byte) {
		vals := make([]JSONValue, len(names))
		err := JSONFields(body, names, vals)
		valid := json.Valid(body)
		switch {
		case !valid && err == nil:
			t.Fatalf("accepted invalid JSON %q", body)
		case valid && errors.Is(err, errJSONSyntax):
			t.Fatalf("syntax error on valid JSON %q", body)
		case errors.Is(err, errJSONUTF8) && utf8.Valid(body) && !bytes.Contains(body, []byte(`\u`)):
			t.Fatalf("UTF-8 error on %q", body)
		}
		if !valid {
			return
		}
		var m map[string]json.RawMessage
		// encoding/json reads null into a map as no map: no object (the
		// campaign found the oracle wrong on "null").
		isObject := json.Unmarshal(body, &m) == nil && m != nil
		if errors.Is(err, errJSONNotObject) == isObject {
			t.Fatalf("object %v but err %v: %q", isObject, err, body)
		}
		if !isObject {
			return
		}
		dup := foldDuplicates(t, body)
		if err == nil && dup || errors.Is(err, errJSONDuplicate) && !dup {
			t.Fatalf("duplicates %v but err %v: %q", dup, err, body)
		}
		if err != nil {
			return
		}
		var st struct {
			RefID any `json:"ref_id"`
		}
		if json.Unmarshal(body, &st) != nil {
			t.Fatalf("struct decode failed: %q", body)
		}
		for i, n := range names {
			raw, ok := m[n]
			if ok != vals[i].Found {
				t.Fatalf("%s found %v, encoding/json %v: %q", n, vals[i].Found, ok, body)
			}
			if !ok {
				continue
			}
			var s string
			isStr := json.Unmarshal(raw, &s) == nil && raw[0] == '"'
			if isStr != vals[i].IsString || vals[i].Null != (string(raw) == "null") {
				t.Fatalf("%s str %v null %v, raw %s", n, vals[i].IsString, vals[i].Null, raw)
			}
			if isStr && string(vals[i].Str.Decode(nil)) != s {
				t.Fatalf("%s = %q, encoding/json %q", n, vals[i].Str.Decode(nil), s)
			}
			if n == "ref_id" && isStr && st.RefID != s {
				t.Fatalf("a handler's struct sees ref_id %q, signed %q", st.RefID, s)
			}
		}
	})
}

// foldDuplicates reports, with encoding/json's Decoder, whether two
// top-level names of the object body are equal under bytes.EqualFold.
func foldDuplicates(t *testing.T, body []byte) bool {
	d := json.NewDecoder(bytes.NewReader(body))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		for _, prev := range keys {
			if strings.EqualFold(prev, k.(string)) {
				return true
			}
		}
		keys = append(keys, k.(string))
	}
	return false
}

// TestJSONValueMissing: an absent member, null and "" give a signed field
// no value; any other value, a blank string included, is one.
func TestJSONValueMissing(t *testing.T) {
	names := []string{"absent", "null", "empty", "blank", "str", "num", "obj", "str"}
	vals := make([]JSONValue, len(names))
	body := `{"null":null,"empty":"","blank":" ","str":"x","num":0,"obj":{}}`
	if err := JSONFields([]byte(body), names, vals); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, true, false, false, false, false, false} {
		if got := vals[i].Missing(); got != want {
			t.Errorf("%s: Missing() = %v, want %v", names[i], got, want)
		}
	}
	if last := vals[len(vals)-1]; !last.IsString || string(last.Str.Decode(nil)) != "x" {
		t.Errorf("a name wanted twice: %+v", last)
	}
}
