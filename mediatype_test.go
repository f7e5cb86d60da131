package apiguard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireJSON(t *testing.T) {
	g := MustNew(nil, WithDialect(Midtrans()))
	const (
		unsupported   = `{"status_code":"415","status_message":"Content-Type must be application/json"}`
		notAcceptable = `{"status_code":"406","status_message":"Accept must allow application/json"}`
	)
	body := `{"transaction_details":{"order_id":"YOUR-ORDERID-123456","gross_amount":10000}}`
	req := func(method, body string, header ...string) *http.Request {
		var r *http.Request
		if body == "" {
			r = httptest.NewRequest(method, "/snap/v1/transactions", nil)
		} else {
			r = httptest.NewRequest(method, "/snap/v1/transactions", strings.NewReader(body))
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		return r
	}
	cases := []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"seed request", req("POST", body, "Content-Type", "application/json", "Accept", "application/json"), 200},
		{"charset", req("POST", body, "Content-Type", "application/json; charset=UTF-8"), 200},
		{"upper case", req("POST", body, "Content-Type", "Application/JSON"), 200},
		{"quoted charset", req("POST", body, "Content-Type", `application/json;charset="utf-8"`), 200},
		{"no content type", req("POST", body), 415},
		{"text/plain", req("POST", body, "Content-Type", "text/plain"), 415},
		{"form", req("POST", body, "Content-Type", "application/x-www-form-urlencoded"), 415},
		{"json suffix", req("POST", body, "Content-Type", "application/problem+json"), 415},
		{"latin-1", req("POST", body, "Content-Type", "application/json; charset=iso-8859-1"), 415},
		{"two content types", req("POST", body, "Content-Type", "application/json", "Content-Type", "text/plain"), 415},
		{"list", req("POST", body, "Content-Type", "application/json, text/plain"), 415},
		{"bad parameter", req("POST", body, "Content-Type", "application/json; ==="), 415},
		{"get without body needs no content type", req("GET", "", "Accept", "application/json"), 200},
		{"415 before 406", req("POST", body, "Content-Type", "text/plain", "Accept", "text/html"), 415},
		{"accept absent", req("GET", ""), 200},
		{"accept empty", req("GET", "", "Accept", ""), 200},
		{"accept */*", req("GET", "", "Accept", "*/*"), 200},
		{"accept application/*", req("GET", "", "Accept", "application/*"), 200},
		{"accept json params", req("GET", "", "Accept", "application/json; charset=utf-8; q=0.5"), 200},
		{"accept browser", req("GET", "", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), 200},
		{"accept json in second header", req("GET", "", "Accept", "text/html", "Accept", "application/json"), 200},
		{"accept quoted comma", req("GET", "", "Accept", `text/html;x="a,application/json", application/json;q=0.1`), 200},
		{"accept garbage then json", req("GET", "", "Accept", "garbage, application/json"), 200},
		{"accept text/html", req("GET", "", "Accept", "text/html"), 406},
		{"accept xml", req("GET", "", "Accept", "application/xml"), 406},
		{"accept json q=0", req("GET", "", "Accept", "application/json;q=0"), 406},
		{"accept json q=0 beats */*", req("GET", "", "Accept", "*/*, application/json;q=0.000"), 406},
		{"accept application/* q=0 beats */*", req("GET", "", "Accept", "*/*;q=1, application/*;q=0"), 406},
		{"accept json beats application/* q=0", req("GET", "", "Accept", "application/*;q=0, application/json;q=0.001"), 200},
		{"accept */json is no range", req("GET", "", "Accept", "*/json"), 406},
		{"accept bad q", req("GET", "", "Accept", "application/json;q=2"), 406},
		{"accept garbage", req("GET", "", "Accept", "json"), 406},
		{"accept quoted comma hides json", req("GET", "", "Accept", `text/html;x="a, application/json"`), 406},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(g.RequireJSON()(okHandler), tc.r)
			switch tc.status {
			case 200:
				if w.Code != 200 {
					t.Errorf("status %d, want 200 (%s)", w.Code, w.Body)
				}
			case 415:
				wantBody(t, w, 415, unsupported)
			case 406:
				wantBody(t, w, 406, notAcceptable)
			}
		})
	}
}

// FuzzAccept checks the Accept and Content-Type scanners: no panic, and
// answers that follow from the header's meaning whatever else it holds.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{
		"application/json", "*/*;q=0.8", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		`a/b;x="q=1,\"", application/json;q=0`, "application/json;q=0.001;ext", ";;,,", `"`, "application/json; charset=utf-8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := acceptsJSON([]string{s})
		isJSONContentType([]string{s})
		// An explicit application/json of q=1 in a header of its own
		// always makes JSON acceptable: it is the most specific range.
		if !acceptsJSON([]string{s, "application/json"}) {
			t.Fatalf("%q + application/json not acceptable", s)
		}
		// A header with neither "json" nor "*" accepts JSON only if it holds
		// no element at all.
		low := strings.ToLower(s)
		if got && !strings.Contains(low, "json") && !strings.Contains(low, "*") && strings.Trim(s, " \t,") != "" {
			t.Fatalf("%q accepted without json or *", s)
		}
		// Refusing application/json outright (q=0, most specific) wins over
		// anything that is not itself an application/json range.
		if !strings.Contains(low, "json") && acceptsJSON([]string{s, "application/json;q=0"}) {
			t.Fatalf("%q + application/json;q=0 acceptable", s)
		}
		// The scanner walks every element: s after an unrelated header
		// answers as s alone, unless s holds no element at all.
		empty := strings.Trim(s, " \t,") == ""
		if acceptsJSON([]string{"text/plain", s}) != (got && !empty) {
			t.Fatalf("%q: answer changes after an unrelated header", s)
		}
	})
}
