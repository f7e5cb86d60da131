package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

var ctx = context.Background()

// counts returns the number of keys and of audit records in s.
func counts(t *testing.T, s *Store) (keys, audit int) {
	t.Helper()
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM apiguard_keys`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM apiguard_audit`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	return keys, audit
}

func TestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		s := open(t, b.url(t), WithClock(clk.Now))
		ips := []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8::/48")}
		notAfter := clk.Now().Add(365 * 24 * time.Hour)
		key, info, err := s.Issue(ctx, "alice", NewKey{
			Prefix: "sk_test_",
			Client: apiguard.Client{ID: "merchant-42", Scopes: []string{"payment:create", "payment:read"},
				Role: "gold", IPs: ips},
			NotAfter: notAfter,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, "sk_test_") || len(key) != len("sk_test_")+43 {
			t.Fatalf("key %q: want sk_test_ and 43 characters", key)
		}
		want := apiguard.Client{ID: "merchant-42", KeyID: info.Client.KeyID, Scopes: []string{"payment:create", "payment:read"},
			Role: "gold", Env: apiguard.Sandbox, IPs: []netip.Prefix{ips[0], ips[1]}}
		got, err := s.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !sameClient(got, &want) {
			t.Fatalf("Lookup = %+v, want %+v", got, want)
		}
		if !sameClient(&info.Client, &want) || info.Prefix != "sk_test_" || info.CreatedBy != "alice" ||
			!info.CreatedAt.Equal(clk.Now()) || !info.NotAfter.Equal(notAfter) || info.Status(clk.Now()) != "active" {
			t.Fatalf("Issue info = %+v", info)
		}

		// Rotate with the default overlap: both keys work for 24 hours.
		clk.Add(time.Hour)
		key2, info2, err := s.Rotate(ctx, "bob", info.Client.KeyID, DefaultOverlap)
		if err != nil {
			t.Fatal(err)
		}
		if key2 == key || !strings.HasPrefix(key2, "sk_test_") || info2.Client.KeyID == info.Client.KeyID {
			t.Fatalf("Rotate gave %q %+v", key2, info2)
		}
		want2 := want
		want2.KeyID = info2.Client.KeyID
		for _, k := range []struct {
			key  string
			want *apiguard.Client
		}{{key, &want}, {key2, &want2}} {
			if got, err := s.Lookup(ctx, k.key); err != nil || !sameClient(got, k.want) {
				t.Fatalf("during the overlap: Lookup = %+v, %v", got, err)
			}
		}
		old, err := s.Key(ctx, info.Client.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		if old.ReplacedBy != info2.Client.KeyID || !old.NotAfter.Equal(clk.Now().Add(24*time.Hour)) || old.Status(clk.Now()) != "rotated" {
			t.Fatalf("old key after Rotate: %+v", old)
		}
		clk.Add(24*time.Hour - time.Nanosecond)
		if _, err := s.Lookup(ctx, key); err != nil {
			t.Fatalf("old key just before the overlap ends: %v", err)
		}
		clk.Add(time.Nanosecond)
		if _, err := s.Lookup(ctx, key); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Fatalf("old key after the overlap: %v, want ErrInvalidKey", err)
		}
		if _, err := s.Lookup(ctx, key2); err != nil {
			t.Fatalf("new key after the overlap: %v", err)
		}

		// Revoke: at once.
		if err := s.Revoke(ctx, "carol", info2.Client.KeyID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, key2); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Fatalf("revoked key: %v, want ErrInvalidKey", err)
		}

		list, err := s.List(ctx, "merchant-42")
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, k := range list {
			states = append(states, k.Client.KeyID+"="+k.Status(clk.Now()))
		}
		if wantStates := []string{info.Client.KeyID + "=expired", info2.Client.KeyID + "=revoked"}; !slices.Equal(states, wantStates) {
			t.Fatalf("List states %v, want %v", states, wantStates)
		}

		audit, err := s.Audit(ctx, "merchant-42")
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, e := range audit {
			trail = append(trail, e.Action+" "+e.KeyID+" by "+e.Actor+" at "+e.At.Format(time.RFC3339))
			if strings.Contains(e.Detail, key) || strings.Contains(e.Detail, key2) {
				t.Fatalf("audit detail holds a key: %q", e.Detail)
			}
		}
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		wantTrail := []string{
			"issue " + info.Client.KeyID + " by alice at " + t0.Format(time.RFC3339),
			"rotate " + info.Client.KeyID + " by bob at " + t0.Add(time.Hour).Format(time.RFC3339),
			"issue " + info2.Client.KeyID + " by bob at " + t0.Add(time.Hour).Format(time.RFC3339),
			"revoke " + info2.Client.KeyID + " by carol at " + t0.Add(25*time.Hour).Format(time.RFC3339),
		}
		if !slices.Equal(trail, wantTrail) {
			t.Fatalf("audit trail\n%s\nwant\n%s", strings.Join(trail, "\n"), strings.Join(wantTrail, "\n"))
		}
	})
}

// TestPublishable pins that Client.Publishable survives the database (the
// kind column holds "publishable" or "server") and a rotation.
func TestPublishable(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		pub, info, err := s.Issue(ctx, "ops", NewKey{Prefix: "SB-Mid-client-", Client: apiguard.Client{ID: "M-demo", Publishable: true}})
		if err != nil {
			t.Fatal(err)
		}
		srv, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "SB-Mid-server-", Client: apiguard.Client{ID: "M-demo"}})
		if err != nil {
			t.Fatal(err)
		}
		if !info.Client.Publishable {
			t.Fatalf("Issue info: %+v, want publishable", info.Client)
		}
		pub2, _, err := s.Rotate(ctx, "ops", info.Client.KeyID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, pub); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Fatalf("the rotated publishable key: %v, want ErrInvalidKey", err)
		}
		for _, k := range []struct {
			key  string
			want bool
		}{{pub2, true}, {srv, false}} {
			c, err := s.Lookup(ctx, k.key)
			if err != nil || c.Publishable != k.want {
				t.Fatalf("Lookup: %+v, %v; want Publishable %v", c, err, k.want)
			}
		}
		var kinds []string
		rows, err := s.db.Query(`SELECT kind FROM apiguard_keys ORDER BY created_at, key_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		if want := []string{"publishable", "publishable", "server"}; !slices.Equal(kinds, want) {
			t.Fatalf("kind column: %v, want %v", kinds, want)
		}
	})
}

func sameClient(a, b *apiguard.Client) bool {
	return a.ID == b.ID && a.KeyID == b.KeyID && slices.Equal(a.Scopes, b.Scopes) && a.Role == b.Role &&
		a.Env == b.Env && slices.Equal(a.IPs, b.IPs) && a.Publishable == b.Publishable
}

func TestLookupRefuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		s := open(t, b.url(t), WithClock(clk.Now))
		key, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "live_", Client: apiguard.Client{ID: "c1"}, NotAfter: clk.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for name, k := range map[string]string{
			"unknown":     "live_" + strings.Repeat("A", 43),
			"empty":       "",
			"one changed": key[:len(key)-1] + string(key[len(key)-1]^1),
			"prefix only": "live_",
			"long":        strings.Repeat("x", 10000),
		} {
			if _, err := s.Lookup(ctx, k); !errors.Is(err, apiguard.ErrInvalidKey) {
				t.Errorf("%s: %v, want ErrInvalidKey", name, err)
			}
		}
		if c, err := s.Lookup(ctx, key); err != nil || c.Env != apiguard.Live {
			t.Fatalf("Lookup = %+v, %v", c, err)
		}
		clk.Add(time.Hour)
		if _, err := s.Lookup(ctx, key); !errors.Is(err, apiguard.ErrInvalidKey) {
			t.Fatalf("at NotAfter: %v, want ErrInvalidKey", err)
		}
	})
}

func TestSecrets(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		kept, ki, err := s.Issue(ctx, "ops", NewKey{Prefix: "SB-", Client: apiguard.Client{ID: "reseller", KeyID: "k2"}, KeepSecret: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "SB-", Client: apiguard.Client{ID: "reseller", KeyID: "k1"}}); err != nil {
			t.Fatal(err)
		}
		kept3, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "SB-", Client: apiguard.Client{ID: "reseller", KeyID: "k3"}, KeepSecret: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Secrets(ctx, "reseller")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Key != kept || got[0].Client.KeyID != "k2" || got[1].Key != kept3 || got[1].Client.Env != apiguard.Sandbox {
			t.Fatalf("Secrets = %+v", got)
		}
		if err := s.Revoke(ctx, "ops", ki.Client.KeyID); err != nil {
			t.Fatal(err)
		}
		var secret *string
		if err := s.db.QueryRow(s.d.q(`SELECT secret FROM apiguard_keys WHERE key_id = $1`), "k2").Scan(&secret); err != nil || secret != nil {
			t.Fatalf("a revoked key's plaintext is kept: %v %v", secret, err)
		}
		if got, err := s.Secrets(ctx, "reseller"); err != nil || len(got) != 1 || got[0].Key != kept3 {
			t.Fatalf("after Revoke: Secrets = %+v, %v", got, err)
		}
		if got, err := s.Secrets(ctx, "nobody"); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("unknown client: Secrets = %#v, %v; want empty, nil", got, err)
		}
	})
}

func TestDigestsOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		key, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM apiguard_keys WHERE secret IS NOT NULL`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("plaintext kept without KeepSecret: %d %v", n, err)
		}
		for _, table := range []string{"apiguard_keys", "apiguard_audit", "apiguard_changes"} {
			rows, err := s.db.Query(`SELECT * FROM ` + table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if s, ok := v.(string); ok && strings.Contains(s, key[8:]) {
						t.Errorf("%s.%s holds the key", table, cols[i])
					}
				}
			}
			rows.Close()
		}
	})
}

func TestIPs(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		key, info, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_test_", Client: apiguard.Client{ID: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		id := info.Client.KeyID
		p1, p2 := netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("198.51.100.0/24")
		if _, err := s.AddIPs(ctx, "ops", id, p1, p2, p1); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Lookup(ctx, key); err != nil || !slices.Equal(c.IPs, []netip.Prefix{p2, p1}) {
			t.Fatalf("Lookup after AddIPs: %+v, %v", c, err)
		}
		_, audit0 := counts(t, s)
		if _, err := s.AddIPs(ctx, "ops", id, p1); err != nil {
			t.Fatal(err)
		}
		if _, audit := counts(t, s); audit != audit0 {
			t.Fatalf("adding a registered range recorded a change")
		}
		info, err = s.RemoveIPs(ctx, "ops", id, p2)
		if err != nil || !slices.Equal(info.Client.IPs, []netip.Prefix{p1}) {
			t.Fatalf("RemoveIPs: %+v, %v", info.Client.IPs, err)
		}
		_, audit0 = counts(t, s)
		// Removing one registered and one not registered changes nothing.
		if _, err := s.RemoveIPs(ctx, "ops", id, p1, p2); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("RemoveIPs of an unregistered range: %v, want ErrNotRegistered", err)
		}
		if info, _ := s.Key(ctx, id); !slices.Equal(info.Client.IPs, []netip.Prefix{p1}) {
			t.Fatalf("a failed RemoveIPs changed the ranges: %v", info.Client.IPs)
		}
		if _, audit := counts(t, s); audit != audit0 {
			t.Fatalf("a failed RemoveIPs recorded a change")
		}
		_, err = s.AddIPs(ctx, "ops", id, netip.MustParsePrefix("203.0.113.7/24"))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "203.0.113.7/32") || !strings.Contains(err.Error(), "203.0.113.0/24") {
			t.Fatalf("host bits set: %v; want ErrInvalid showing 203.0.113.7/32 and 203.0.113.0/24", err)
		}
		if _, err := s.AddIPs(ctx, "ops", "key_nope", p1); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown key: %v", err)
		}
		if _, err := s.RemoveIPs(ctx, "ops", id, p1); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Lookup(ctx, key); err != nil || c.IPs != nil {
			t.Fatalf("after removing every range: %+v, %v", c, err)
		}
	})
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7/32",
		" 203.0.113.0/24 ":        "203.0.113.0/24",
		"2001:db8::1":             "2001:db8::1/128",
		"2001:db8::/32":           "2001:db8::/32",
		"::ffff:203.0.113.7":      "203.0.113.7/32",
		"::ffff:198.51.100.0/120": "198.51.100.0/24",
		"0.0.0.0/0":               "0.0.0.0/0",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for in, hint := range map[string]string{
		"203.0.113.7/24": "write 203.0.113.7/32 for the one address, or 203.0.113.0/24 for the network",
		"2001:db8::1/64": "2001:db8::1/128",
		"fe80::1%eth0":   "not an IP address",
		"203.0.113.256":  "not an IP address",
		"203.0.113.0/33": "not an address range",
		"":               "not an IP address",
		"host.example":   "not an IP address",
	} {
		_, err := ParsePrefix(in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), hint) {
			t.Errorf("ParsePrefix(%q) = %v; want ErrInvalid saying %q", in, err, hint)
		}
	}
}

// TestRefusalsChangeNothing pins that a refused change leaves the keys and
// the audit table as they were.
func TestRefusalsChangeNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		_, live, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "c", KeyID: "live1"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "c", KeyID: "gone"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "ops", "gone"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Rotate(ctx, "ops", "live1", time.Hour); err != nil {
			t.Fatal(err)
		}
		keys0, audit0 := counts(t, s)
		for _, tc := range []struct {
			name string
			do   func() error
			want error
		}{
			{"revoke unknown", func() error { return s.Revoke(ctx, "ops", "nope") }, ErrUnknownKey},
			{"revoke revoked", func() error { return s.Revoke(ctx, "ops", "gone") }, ErrRevoked},
			{"rotate revoked", func() error { _, _, err := s.Rotate(ctx, "ops", "gone", 0); return err }, ErrRevoked},
			{"rotate twice", func() error { _, _, err := s.Rotate(ctx, "ops", live.Client.KeyID, 0); return err }, ErrReplaced},
			{"rotate unknown", func() error { _, _, err := s.Rotate(ctx, "ops", "nope", 0); return err }, ErrUnknownKey},
			{"negative overlap", func() error { _, _, err := s.Rotate(ctx, "ops", "live1", -time.Second); return err }, ErrInvalid},
			{"no actor", func() error { return s.Revoke(ctx, "", "live1") }, ErrInvalid},
			{"actor with newline", func() error { return s.Revoke(ctx, "a\nb", "live1") }, ErrInvalid},
			{"bad prefix", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk live", Client: apiguard.Client{ID: "c"}})
				return err
			}, ErrInvalid},
			{"no client", func() error { _, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_"}); return err }, ErrInvalid},
			{"client id with space", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "a b"}})
				return err
			}, ErrInvalid},
			{"sandbox key with a live prefix", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_live_", Client: apiguard.Client{ID: "c", Env: apiguard.Sandbox}})
				return err
			}, ErrInvalid},
			{"scope with a space", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "c", Scopes: []string{"a b"}}})
				return err
			}, ErrInvalid},
			{"range with host bits", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "c", IPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}}})
				return err
			}, ErrInvalid},
			{"key id taken", func() error {
				_, _, err := s.Issue(ctx, "ops", NewKey{Client: apiguard.Client{ID: "other", KeyID: "live1"}})
				return err
			}, ErrExists},
			{"list unknown client", func() error { _, err := s.List(ctx, "nobody"); return err }, ErrUnknownClient},
			{"ips of a revoked key", func() error {
				_, err := s.AddIPs(ctx, "ops", "gone", netip.MustParsePrefix("10.0.0.0/8"))
				return err
			}, ErrRevoked},
			{"no ranges", func() error { _, err := s.AddIPs(ctx, "ops", "live1"); return err }, ErrInvalid},
		} {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if keys, audit := counts(t, s); keys != keys0 || audit != audit0 {
			t.Fatalf("refusals changed the database: %d keys, %d audit records; want %d, %d", keys, audit, keys0, audit0)
		}
	})
}

func TestAdd(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		const key = "sandbox_handed-out-by-email-in-2024"
		info, err := s.Add(ctx, "migration", apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "old", Role: "silver"}, KeepSecret: true})
		if err != nil {
			t.Fatal(err)
		}
		if info.Prefix != "" || info.Client.Env != apiguard.Sandbox || !strings.HasPrefix(info.Client.KeyID, "key_") {
			t.Fatalf("Add info = %+v", info)
		}
		if c, err := s.Lookup(ctx, key); err != nil || c.Role != "silver" {
			t.Fatalf("Lookup = %+v, %v", c, err)
		}
		if _, err := s.Add(ctx, "migration", apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "other"}}); !errors.Is(err, ErrExists) {
			t.Fatalf("adding a stored key again: %v, want ErrExists", err)
		}
	})
}

func TestMigrations(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.url(t)
		// Stores starting at once on a new database: one migrates, the
		// others find nothing to do.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				s, err := Open(ctx, url)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		s := open(t, url)
		var n, v int
		if err := s.db.QueryRow(`SELECT COUNT(*), MAX(version) FROM apiguard_schema_version`).Scan(&n, &v); err != nil || n != 1 || v != SchemaVersion {
			t.Fatalf("schema_version: %d rows, version %d, %v", n, v, err)
		}
		// A schema newer than the package is refused, not touched.
		if _, err := s.db.Exec(s.d.q(`INSERT INTO apiguard_schema_version (version, applied_at) VALUES ($1, 'later')`), SchemaVersion+1); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, url); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("Open on a newer schema: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	for _, url := range []string{
		"", "mysql://u:p@h/db", "sqlite://x.db", "sqlite::memory:", "file::memory:?cache=shared",
		"postgres:///nohost", "redis://h",
	} {
		if s, err := Open(ctx, url); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
	// An unreachable server: an error, quickly, without the password.
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := Open(c, "postgres://app:s3cr3t-pw@127.0.0.1:1/keys?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("Open on a closed port: %v", err)
	}
	// A folder that does not exist.
	if _, err := Open(ctx, "sqlite:"+t.TempDir()+"/no/such/dir/keys.db"); err == nil {
		t.Fatal("Open in a missing folder succeeded")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:s3cr3t@db:5432/keys":                 "postgres://app:xxxxx@db:5432/keys",
		"postgres://db/keys?password=s3cr3t&sslmode=require": "postgres://db/keys?password=xxxxx&sslmode=require",
		"postgres://app@db/keys":                             "postgres://app@db/keys",
		"sqlite:/var/lib/apiguard/keys.db":                   "sqlite:/var/lib/apiguard/keys.db",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAddTogether pins that stores adding one key at once leave one row,
// and every other Add fails with ErrExists, not with the database's
// unique-violation error.
func TestAddTogether(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.url(t)
		const n = 6
		stores := make([]*Store, n)
		for i := range stores {
			stores[i] = open(t, url)
		}
		spec := apiguard.KeySpec{Key: "sk_test_together", Client: apiguard.Client{ID: "m", KeyID: "k1"}}
		errs := make(chan error, n)
		for _, s := range stores {
			go func() {
				_, err := s.Add(ctx, "ops", spec)
				errs <- err
			}()
		}
		added := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				added++
			case !errors.Is(err, ErrExists):
				t.Errorf("Add: %v, want ErrExists", err)
			}
		}
		if keys, _ := counts(t, stores[0]); added != 1 || keys != 1 {
			t.Fatalf("%d Adds succeeded, %d keys stored; want 1 and 1", added, keys)
		}
	})
}
