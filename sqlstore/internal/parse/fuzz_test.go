package parse

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseURL feeds database URLs, as operators and configuration give
// them, to the parser Open uses and to RedactURL.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://app:s3cr3t@db:5432/keys?sslmode=require", "postgresql://db/keys?password=pw",
		"sqlite:/var/lib/apiguard/keys.db", "keys.db", "file:keys.db?mode=ro", "sqlite::memory:",
		"sqlite:keys.db?_pragma=busy_timeout(1)", "mysql://u:p@h/d", "", "postgres://%zz", "sqlite:?x=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		pg, dsn, err := DatabaseURL(raw)
		if err == nil {
			if pg && !strings.HasPrefix(strings.ToLower(dsn), "postgres") {
				t.Fatalf("postgres DSN %q from %q", dsn, raw)
			}
			if !pg && (!strings.Contains(strings.ToLower(dsn), "busy_timeout") || strings.HasPrefix(strings.TrimPrefix(dsn, "file:"), ":memory:") || strings.HasPrefix(dsn, "?")) {
				t.Fatalf("SQLite DSN %q from %q", dsn, raw)
			}
		}
		if pw := Password(Redact(raw)); pw != "" && pw != "xxxxx" {
			t.Fatalf("Redact(%q) keeps the password %q", raw, pw)
		}
	})
}

// FuzzParsePrefix feeds address ranges as operators type them.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.0/24", "203.0.113.7/24", "2001:db8::/32", "::ffff:1.2.3.4/120",
		"fe80::1%eth0", "0.0.0.0/0", "1.2.3.4/33", " 10.0.0.0/8 ", "::/0", "::ffff:0.0.0.0/95"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Prefix(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Prefix(%q): %v", s, err)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || (p.Addr().Is4In6() && p.Bits() >= 96) {
			t.Fatalf("Prefix(%q) = %v", s, p)
		}
		if q, err := Prefix(p.String()); err != nil || q != p {
			t.Fatalf("Prefix(%q) = %v; again: %v, %v", s, p, q, err)
		}
		if q, err := CheckPrefix(p); err != nil || q != p {
			t.Fatalf("CheckPrefix(%v) = %v, %v", p, q, err)
		}
	})
}

// FuzzPayload feeds notification payloads, which anyone who can connect to
// the database can send on the channel.
func FuzzPayload(f *testing.F) {
	f.Add(FormatPayload(Payload{Seq: 1, KeyID: "key_0123", ClientID: "m"}))
	for _, s := range []string{`{}`, `{"seq":1,"key_id":"k","client_id":"c"} `, `{"seq":-1}`, `[]`, `{"seq":1e3,"key_id":"k","client_id":"c"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParsePayload(s)
		if err != nil {
			return
		}
		if c.Seq <= 0 || ID("key id", c.KeyID) != nil || ID("client id", c.ClientID) != nil {
			t.Fatalf("ParsePayload(%q) = %+v", s, c)
		}
		if d, err := ParsePayload(FormatPayload(c)); err != nil || d != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, d, err)
		}
	})
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:s3cr3t@db:5432/keys":                 "postgres://app:xxxxx@db:5432/keys",
		"postgres://db/keys?password=s3cr3t&sslmode=require": "postgres://db/keys?password=xxxxx&sslmode=require",
		"postgres://app@db/keys":                             "postgres://app@db/keys",
		"sqlite:/var/lib/apiguard/keys.db":                   "sqlite:/var/lib/apiguard/keys.db",
		"A:// @?password=0":                                  "A://xxxxx@?password=xxxxx",
		"host=db user=app password=s3cr3t dbname=keys":       "host=db user=app password=xxxxx dbname=keys",
		"postgres://a:b@h x/d?password=c":                    "postgres://xxxxx@h x/d?password=xxxxx",
		"//:0@://%@":                                         "//xxxxx@", // found by FuzzParseURL: credentials before a later "://"
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
