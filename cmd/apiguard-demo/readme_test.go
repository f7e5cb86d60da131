package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReadmeTour runs every curl line of the README's tour against a live
// gateway and compares each answer with the body the README shows. A string
// value written "<...>" in the README matches any string.
func TestReadmeTour(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := tourSteps(string(readme))
	// One success and one documented error per API, at least.
	for _, prefix := range []string{"/mockpay/", "/topup/", "/midtrans/", "/client/", "/88pay/"} {
		n := 0
		for _, s := range steps {
			if strings.Contains(s.line, prefix) {
				n++
			}
		}
		if n < 2 {
			t.Errorf("the README's tour has %d curl lines for %s, want at least 2", n, prefix)
		}
	}
	d := startDemo(t, config{})
	for _, s := range steps {
		t.Run(s.line, func(t *testing.T) {
			method, url, body, headers, err := parseCurl(s.line)
			if err != nil {
				t.Fatal(err)
			}
			url = strings.Replace(url, "http://127.0.0.1:8080", d.base, 1)
			url = strings.Replace(url, "https://127.0.0.1:8443", d.secure, 1)
			r := d.call(t, method, url, body, headers...)
			var got, want any
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("answer %q is not JSON", r.body)
			}
			if err := json.Unmarshal([]byte(s.want), &want); err != nil {
				t.Fatalf("README shows %q, not JSON", s.want)
			}
			if !matches(got, want) {
				t.Errorf("answered %s\nREADME shows %s", r.body, s.want)
			}
		})
	}
}

type tourStep struct{ line, want string }

// tourSteps finds, between <!-- tour --> and <!-- /tour -->, each line
// "$ curl ..." and the JSON line after it.
func tourSteps(readme string) []tourStep {
	start := strings.Index(readme, "<!-- tour -->")
	end := strings.Index(readme, "<!-- /tour -->")
	if start < 0 || end < start {
		return nil
	}
	lines := strings.Split(readme[start:end], "\n")
	var steps []tourStep
	for i := 0; i+1 < len(lines); i++ {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "$ curl ") {
			steps = append(steps, tourStep{strings.TrimPrefix(l, "$ "), strings.TrimSpace(lines[i+1])})
		}
	}
	return steps
}

// matches compares decoded JSON, a "<...>" string in want matching any
// string.
func matches(got, want any) bool {
	switch w := want.(type) {
	case string:
		if strings.HasPrefix(w, "<") && strings.HasSuffix(w, ">") {
			_, ok := got.(string)
			return ok
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok || !matches(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matches(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

// parseCurl understands the curl flags the tour uses: -s, -k, -X, -H, -d and
// -u. Headers come back as alternating names and values.
func parseCurl(line string) (method, url, body string, headers []string, err error) {
	words, err := shellWords(line)
	if err != nil {
		return
	}
	if len(words) == 0 || words[0] != "curl" {
		return "", "", "", nil, fmt.Errorf("not a curl line: %q", line)
	}
	method = "GET"
	for i := 1; i < len(words); i++ {
		w := words[i]
		arg := func() string {
			i++
			if i >= len(words) {
				err = fmt.Errorf("%s needs an argument", w)
				return ""
			}
			return words[i]
		}
		switch w {
		case "-s", "-k", "-sk", "-ks":
		case "-X":
			method = arg()
		case "-H":
			name, value, _ := strings.Cut(arg(), ":")
			headers = append(headers, strings.TrimSpace(name), strings.TrimSpace(value))
		case "-d":
			body = arg()
			if method == "GET" {
				method = "POST"
			}
		case "-u":
			headers = append(headers, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(arg())))
		default:
			if strings.HasPrefix(w, "-") {
				return "", "", "", nil, fmt.Errorf("flag %s not understood", w)
			}
			url = w
		}
	}
	return
}

// shellWords splits a line as a POSIX shell would, for single and double
// quotes and backslash escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unclosed \" in %q", s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWordsAndCurl(t *testing.T) {
	m, u, b, h, err := parseCurl(`curl -s -X POST http://x/y -H "Authorization: Bearer k" -H 'Content-Type: application/json' -d '{"a":"b c"}' -u "u:"`)
	if err != nil || m != "POST" || u != "http://x/y" || b != `{"a":"b c"}` ||
		!reflect.DeepEqual(h, []string{"Authorization", "Bearer k", "Content-Type", "application/json", "Authorization", "Basic dTo="}) {
		t.Errorf("%q %q %q %q %v", m, u, b, h, err)
	}
	if _, _, _, _, err := parseCurl(`curl -v http://x`); err == nil {
		t.Error("unknown flag accepted")
	}
	if !matches(map[string]any{"a": "xyz"}, map[string]any{"a": "<id>"}) || matches(map[string]any{"a": 1.0}, map[string]any{"a": "<id>"}) {
		t.Error("wildcards")
	}
}
