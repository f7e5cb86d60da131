package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore"
	"github.com/apiguard/apiguard/sqlstore/pgtest"
)

// TestMain stops the PostgreSQL server the tests started, if any (see
// package pgtest).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

type backend struct {
	name string
	url  func(t *testing.T) string
}

var backends = []backend{
	{"postgres", func(t *testing.T) string {
		u, err := pgtest.Shared(t).NewDatabase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}},
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "keys.db") }},
}

// cli runs the command in-process.
func cli(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// snapshot returns what the database holds, to check that a refused
// command changed nothing.
func snapshot(t *testing.T, url string) string {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT key_id, client_id, COALESCE(secret, ''), ips, scopes, COALESCE(replaced_by, ''), revoked_at IS NULL, not_after IS NULL FROM apiguard_keys ORDER BY key_id`,
		`SELECT id, action, key_id, detail, '', '', true, true FROM apiguard_audit ORDER BY id`,
	} {
		rows, err := st.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b2, c, d, e, f string
			var g, h bool
			if err := rows.Scan(&a, &b2, &c, &d, &e, &f, &g, &h); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, a, b2, c, d, e, f, g, h)
		}
		rows.Close()
	}
	return b.String()
}

func TestCommands(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			t.Setenv("APIGUARD_DB", url)
			t.Setenv("USER", "alice")

			code, out, errOut := cli("keys", "issue", "--client", "merchant-42", "--env", "sandbox",
				"--scope", "payment:create,payment:read", "--role", "gold", "--ip", "203.0.113.7", "--json")
			if code != 0 {
				t.Fatalf("issue: %d %s", code, errOut)
			}
			var issued struct{ Key, KeyID string }
			var full map[string]any
			json.Unmarshal([]byte(out), &full)
			issued.Key, _ = full["key"].(string)
			issued.KeyID, _ = full["key_id"].(string)
			if !strings.HasPrefix(issued.Key, "sk_test_") || full["env"] != "sandbox" || full["created_by"] != "alice" {
				t.Fatalf("issue --json: %s", out)
			}

			// The table shows the key once, and says so on stderr.
			code, out, errOut = cli("keys", "issue", "--client", "merchant-42", "--env", "live", "--kind", "publishable", "--actor", "bob")
			if code != 0 || !strings.Contains(out, "pk_live_") || !strings.Contains(errOut, "shown this once") {
				t.Fatalf("issue: %d %q %q", code, out, errOut)
			}

			code, out, _ = cli("keys", "list", "merchant-42")
			if code != 0 || !strings.Contains(out, issued.KeyID) || !strings.Contains(out, "203.0.113.7/32") ||
				strings.Contains(out, issued.Key) || !strings.Contains(out, "STATUS") {
				t.Fatalf("list: %d\n%s", code, out)
			}

			code, out, errOut = cli("keys", "rotate", issued.KeyID, "--overlap", "1h", "--json")
			var rotated struct {
				Key      string `json:"key"`
				KeyID    string `json:"key_id"`
				Replaces struct {
					Status   string    `json:"status"`
					NotAfter time.Time `json:"not_after"`
				} `json:"replaces"`
			}
			if err := json.Unmarshal([]byte(out), &rotated); code != 0 || err != nil || rotated.Replaces.Status != "rotated" ||
				time.Until(rotated.Replaces.NotAfter) > time.Hour || time.Until(rotated.Replaces.NotAfter) < 50*time.Minute {
				t.Fatalf("rotate: %d %v %s %s", code, err, out, errOut)
			}

			code, out, _ = cli("ips", "add", rotated.KeyID, "198.51.100.0/24", "2001:db8::1")
			if code != 0 || out != "198.51.100.0/24\n203.0.113.7/32\n2001:db8::1/128\n" {
				t.Fatalf("ips add: %d %q", code, out)
			}
			code, out, _ = cli("ips", "remove", rotated.KeyID, "203.0.113.7/32", "--json")
			if code != 0 || !strings.Contains(out, `"198.51.100.0/24"`) || strings.Contains(out, "203.0.113.7") {
				t.Fatalf("ips remove: %d %q", code, out)
			}
			code, out, _ = cli("ips", "list", rotated.KeyID)
			if code != 0 || out != "198.51.100.0/24\n2001:db8::1/128\n" {
				t.Fatalf("ips list: %d %q", code, out)
			}
			code, out, _ = cli("keys", "revoke", issued.KeyID, "--actor", "carol")
			if code != 0 || !strings.Contains(out, "revoked") {
				t.Fatalf("revoke: %d %q", code, out)
			}

			st, err := sqlstore.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Lookup(context.Background(), rotated.Key); err != nil {
				t.Fatalf("the rotated key: %v", err)
			}
			if _, err := st.Lookup(context.Background(), issued.Key); err == nil {
				t.Fatal("the revoked key still works")
			}
			audit, err := st.Audit(context.Background(), "merchant-42")
			if err != nil {
				t.Fatal(err)
			}
			var actors []string
			for _, e := range audit {
				actors = append(actors, e.Action+":"+e.Actor)
			}
			if got := strings.Join(actors, " "); got != "issue:alice issue:bob rotate:alice issue:alice ip-add:alice ip-remove:alice revoke:carol" {
				t.Fatalf("audit: %s", got)
			}
		})
	}
}

// TestBadInput runs each mistake an operator can make: each gets one line
// on stderr, a non-zero exit, and changes nothing.
func TestBadInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			t.Setenv("APIGUARD_DB", url)
			t.Setenv("USER", "alice")
			code, out, errOut := cli("keys", "issue", "--client", "c1", "--env", "live", "--json")
			if code != 0 {
				t.Fatal(errOut)
			}
			var k struct {
				KeyID string `json:"key_id"`
			}
			json.Unmarshal([]byte(out), &k)
			if code, _, errOut := cli("keys", "issue", "--client", "c1", "--env", "live", "--key-id", "gone"); code != 0 {
				t.Fatal(errOut)
			}
			if code, _, errOut := cli("keys", "revoke", "gone"); code != 0 {
				t.Fatal(errOut)
			}
			before := snapshot(t, url)
			for _, tc := range []struct {
				name string
				args []string
				code int
				want string // in the stderr line
			}{
				{"nothing to do", nil, 2, "say what to do"},
				{"unknown group", []string{"users", "add"}, 2, `unknown command "users"`},
				{"unknown verb", []string{"keys", "delete", k.KeyID}, 2, `unknown command "delete"`},
				{"group alone", []string{"ips"}, 2, "say which command"},
				{"unknown option", []string{"keys", "revoke", "--force", k.KeyID}, 2, "unknown option -force"},
				{"issue without client", []string{"keys", "issue", "--env", "live"}, 2, "--client is required"},
				{"issue without env", []string{"keys", "issue", "--client", "c1"}, 2, "--env sandbox|live or --prefix"},
				{"issue bad env", []string{"keys", "issue", "--client", "c1", "--env", "prod"}, 2, "--env is sandbox or live"},
				{"issue env against prefix", []string{"keys", "issue", "--client", "c1", "--env", "sandbox", "--prefix", "live_"}, 1, "cannot have a live prefix"},
				{"issue bad prefix", []string{"keys", "issue", "--client", "c1", "--prefix", "sk live"}, 1, "key prefix"},
				{"issue malformed IP", []string{"keys", "issue", "--client", "c1", "--env", "live", "--ip", "203.0.113.300"}, 2, "not an IP address"},
				{"issue host bits", []string{"keys", "issue", "--client", "c1", "--env", "live", "--ip", "203.0.113.7/24"}, 2, "203.0.113.7/32"},
				{"issue bad time", []string{"keys", "issue", "--client", "c1", "--env", "live", "--not-after", "tomorrow"}, 2, "not a time"},
				{"issue client with space", []string{"keys", "issue", "--client", "c 1", "--env", "live"}, 1, "client id"},
				{"issue taken key id", []string{"keys", "issue", "--client", "c2", "--env", "live", "--key-id", k.KeyID}, 1, "stored already"},
				{"list unknown client", []string{"keys", "list", "nobody"}, 1, `no such client: "nobody"`},
				{"list two clients", []string{"keys", "list", "a", "b"}, 2, "takes one client id"},
				{"rotate unknown key", []string{"keys", "rotate", "key_nope"}, 1, `no such key: "key_nope"`},
				{"rotate revoked key", []string{"keys", "rotate", "gone"}, 1, "key revoked"},
				{"rotate bad overlap", []string{"keys", "rotate", "--overlap", "a day", k.KeyID}, 2, "overlap"},
				{"rotate negative overlap", []string{"keys", "rotate", "--overlap", "-1h", k.KeyID}, 2, "must not be negative"},
				{"revoke unknown key", []string{"keys", "revoke", "key_nope"}, 1, "no such key"},
				{"revoke revoked key", []string{"keys", "revoke", "gone"}, 1, "key revoked"},
				{"revoke no key", []string{"keys", "revoke"}, 2, "takes one key id"},
				{"ips malformed", []string{"ips", "add", k.KeyID, "10.0.0.0/8", "not-an-ip"}, 2, `"not-an-ip" is not an IP address`},
				{"ips host bits", []string{"ips", "add", k.KeyID, "203.0.113.7/24"}, 2, "write 203.0.113.7/32 for the one address, or 203.0.113.0/24 for the network"},
				{"ips zone", []string{"ips", "add", k.KeyID, "fe80::1%eth0"}, 2, "not an IP address"},
				{"ips unknown key", []string{"ips", "add", "key_nope", "10.0.0.0/8"}, 1, "no such key"},
				{"ips none", []string{"ips", "add", k.KeyID}, 2, "one or more address ranges"},
				{"ips remove unregistered", []string{"ips", "remove", k.KeyID, "10.0.0.0/8"}, 1, "not registered"},
				{"ips list unknown key", []string{"ips", "list", "key_nope"}, 1, "no such key"},
				{"no actor", []string{"keys", "revoke", k.KeyID, "--actor", ""}, 1, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.name == "no actor" {
						t.Setenv("USER", "")
						// user.Current still names the OS user: an
						// actor with a control character is refused.
						tc.args = []string{"keys", "revoke", k.KeyID, "--actor", "a\tb"}
						tc.want = "control character"
					}
					code, out, errOut := cli(tc.args...)
					if code != tc.code || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
						t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want one line with %q)", code, tc.code, out, errOut, tc.want)
					}
				})
			}
			if after := snapshot(t, url); after != before {
				t.Fatalf("refused commands changed the database:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

func TestDatabaseErrors(t *testing.T) {
	t.Setenv("USER", "alice")
	t.Setenv("APIGUARD_DB", "")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no database", []string{"keys", "list", "c"}, 1, "give --db URL or set APIGUARD_DB"},
		{"postgres down", []string{"--db", "postgres://app:s3cr3t@127.0.0.1:1/keys?sslmode=disable", "keys", "revoke", "key_x"}, 1, "cannot use the database postgres://app:xxxxx@127.0.0.1:1/keys"},
		{"postgres unknown host", []string{"--db", "postgres://app:s3cr3t@no-such-host.invalid/keys?connect_timeout=2", "keys", "list", "c"}, 1, "cannot use the database"},
		{"postgres no such database", []string{"--db", pgtest.Shared(t).URL("nope"), "keys", "list", "c"}, 1, "cannot use the database"},
		{"unsupported scheme", []string{"--db", "mysql://u:s3cr3t@h/db", "keys", "list", "c"}, 1, "unsupported database URL"},
		{"sqlite missing file", []string{"--db", "sqlite:" + filepath.Join(dir, "none.db"), "keys", "list", "c"}, 1, "no database at"},
		{"sqlite missing folder", []string{"--db", filepath.Join(dir, "no", "such", "keys.db"), "keys", "issue", "--client", "c", "--env", "live"}, 1, "cannot use the database"},
		{"sqlite not a database", []string{"--db", writeFile(t, dir, "junk.db", "not sqlite at all, just text\n"), "keys", "list", "c"}, 1, "cannot use the database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, errOut := cli(tc.args...)
			if code != tc.code || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "s3cr3t") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and one line with %q, no password", code, out, errOut, tc.code, tc.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Fatal("a failed list created a database file")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHelp checks that every level has a manual page with the sections a
// man page has.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"keys", "--help"}, {"ips", "-h"},
		{"keys", "issue", "--help"}, {"keys", "rotate", "--help"}, {"keys", "revoke", "-h"}, {"keys", "list", "--help"},
		{"ips", "add", "--help"}, {"ips", "remove", "--help"}, {"ips", "list", "--help"},
		{"--db", "sqlite:/nonexistent/x.db", "keys", "revoke", "key_x", "--help"},
	} {
		code, out, errOut := cli(args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		for _, section := range []string{"NAME\n", "SYNOPSIS\n", "DESCRIPTION\n", "OPTIONS\n", "EXAMPLES\n", "EXIT STATUS\n", "--db URL             the database"} {
			if !strings.Contains(out, section) {
				t.Errorf("%v: no %q in\n%s", args, section, out)
			}
		}
		for i, line := range strings.Split(out, "\n") {
			if len(line) > 80 {
				t.Errorf("%v: line %d longer than 80 columns: %q", args, i+1, line)
			}
		}
	}
}

// TestBinary builds the command and runs it as an operator would: a
// success, a refusal and a usage error, with their exit codes.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "apiguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url, err := pgtest.Shared(t).NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "issue", "--client", "m1", "--env", "sandbox"}, 0, "sk_test_"},
		{[]string{"keys", "list", "m1"}, 0, "active"},
		{[]string{"keys", "list", "m2"}, 1, `apiguard: no such client: "m2"`},
		{[]string{"ips", "add", "key_x", "203.0.113.7/24"}, 2, "203.0.113.0/24"},
		{[]string{"--db", "postgres://u:pw@127.0.0.1:1/x", "keys", "list", "m1"}, 1, "cannot use the database"},
		{[]string{"keys", "--help"}, 0, "SYNOPSIS"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "APIGUARD_DB="+url, "USER=ops")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(o.String()+e.String(), tc.want) {
			t.Errorf("apiguard %v: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, o.String(), e.String(), tc.want)
		}
	}
	// What the binary issued, the library finds.
	st, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.List(context.Background(), "m1")
	if err != nil || len(list) != 1 || list[0].Client.Env != apiguard.Sandbox || list[0].CreatedBy != "ops" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}
