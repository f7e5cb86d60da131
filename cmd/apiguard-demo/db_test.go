package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiguard/apiguard/sqlstore/pgtest"
)

// The apiguard operator command, built once for the tests that need it.
var (
	cmdOnce sync.Once
	cmdPath string
	cmdErr  error
	cmdOut  []byte
)

// operator returns a function that runs the apiguard command (built from
// the sqlstore module) against the database url and returns its standard
// output; a non-zero exit fails t.
func operator(t *testing.T, url string) func(args ...string) []byte {
	t.Helper()
	cmdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "apiguard-demo-cmd-")
		if err != nil {
			cmdErr = err
			return
		}
		cmdPath = filepath.Join(dir, "apiguard")
		cmdOut, cmdErr = exec.Command("go", "build", "-o", cmdPath, "github.com/apiguard/apiguard/sqlstore/cmd/apiguard").CombinedOutput()
	})
	if cmdErr != nil {
		t.Fatalf("building the apiguard command: %v\n%s", cmdErr, cmdOut)
	}
	return func(args ...string) []byte {
		t.Helper()
		var stdout, stderr bytes.Buffer
		c := exec.Command(cmdPath, append(args, "--db", url, "--actor", "test")...)
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			t.Fatalf("apiguard %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	for _, bin := range []string{cmdPath, demoBin} {
		if bin != "" {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// issued is what `apiguard keys issue --json` and `keys rotate --json` print.
type issued struct {
	Key   string `json:"key"`
	KeyID string `json:"key_id"`
}

func decodeIssued(t *testing.T, out []byte) issued {
	t.Helper()
	var k issued
	if err := json.Unmarshal(out, &k); err != nil || k.Key == "" || k.KeyID == "" {
		t.Fatalf("apiguard printed %s: %v", out, err)
	}
	return k
}

// waitStatus calls call until it answers status, failing t if that takes
// more than within; it returns how long it took.
func waitStatus(t *testing.T, within time.Duration, status int, call func() response) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := call()
		if r.status == status {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("still %d %s %v after the change, want %d", r.status, r.body, within, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dbBackends are the databases TestDBKeys runs against; url returns a new,
// empty one.
var dbBackends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "keys.db") }},
	{"postgres", func(t *testing.T) string {
		u, err := pgtest.Shared(t).NewDatabase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}},
}

// TestDBKeys pins DEMO.md's -db promise on an SQLite file and on
// PostgreSQL: the demo's
// fixed keys are seeded and work as in memory; a key issued with the
// apiguard command works, and once revoked or rotated with it is refused
// within a second by both of two demos on the database; a demo key revoked
// with the command stays revoked when a demo starts again.
func TestDBKeys(t *testing.T) {
	for _, b := range dbBackends {
		t.Run(b.name, func(t *testing.T) { testDBKeys(t, b.url(t)) })
	}
}

func testDBKeys(t *testing.T, url string) {
	apiguard := operator(t, url)
	d1 := startDemo(t, config{db: url})
	d2 := startDemo(t, config{db: url})
	create := func(d *demo, key string) response {
		return d.call(t, "POST", d.base+"/mockpay/api/v1/payment/create", `{"order_id":"ORDER-`+key[len(key)-6:]+`","amount":100000}`,
			"Authorization", "Bearer "+key, "Content-Type", "application/json")
	}

	// The fixed keys, from the database.
	create(d1, mockPayKeyA).want(t, 200, `{"success":true,"data":{"order_id":"ORDER-A_full","amount":100000,"status":"pending"}}`)
	create(d1, mockPayKeyB).want(t, 403, mockForbidden)
	create(d1, mockPayKeyLive).want(t, 401, mockUnauthorized)
	// Each API takes only its own keys: 88Pay's key is no MockPay key.
	create(d1, pay88Key).want(t, 401, mockUnauthorized)
	if r := d1.call(t, "GET", d1.base+"/topup/product", "", "Authorization", "Bearer "+topupKeyGold); r.status != 200 {
		t.Errorf("topup product with the gold key: %d %s", r.status, r.body)
	}
	if r := d1.call(t, "POST", d1.base+"/midtrans/snap/v1/transactions", `{"transaction_details":{"order_id":"O-1","gross_amount":10000}}`,
		"Authorization", "Basic U0ItTWlkLXNlcnZlci1kZW1vMTIzNDU2Og==", "Content-Type", "application/json"); r.status != 201 {
		t.Errorf("midtrans snap with the server key: %d %s", r.status, r.body)
	}
	if r := d1.call(t, "POST", d1.secure+"/88pay/api/auth/token", "", "x-api-key", pay88Key, "x-merchant-id", pay88Merchant); r.status != 200 {
		t.Errorf("88pay token: %d %s", r.status, r.body)
	}

	// A key issued with the command works on both demos at once: it was
	// never looked up, so no cache holds it.
	k := decodeIssued(t, apiguard("keys", "issue", "--client", "merchant-42", "--prefix", "sandbox_sk_test_",
		"--scope", "payment:create,payment:read", "--json"))
	for _, d := range []*demo{d1, d2} {
		if r := create(d, k.Key); r.status != 200 {
			t.Fatalf("the issued key: %d %s", r.status, r.body)
		}
	}
	// Both demos cache it now (for 30 s); a revocation reaches them
	// within a second all the same.
	apiguard("keys", "revoke", k.KeyID)
	for i, d := range []*demo{d1, d2} {
		took := waitStatus(t, time.Second, 401, func() response { return create(d, k.Key) })
		t.Logf("demo %d refused the revoked key after %v", i+1, took)
		create(d, k.Key).want(t, 401, mockUnauthorized)
	}

	// A rotation without overlap: the old key is refused within a second,
	// the new one works.
	k2 := decodeIssued(t, apiguard("keys", "issue", "--client", "merchant-42", "--prefix", "sandbox_sk_test_",
		"--scope", "payment:create", "--json"))
	if r := create(d2, k2.Key); r.status != 200 {
		t.Fatalf("the second key: %d %s", r.status, r.body)
	}
	k3 := decodeIssued(t, apiguard("keys", "rotate", k2.KeyID, "--overlap", "0s", "--json"))
	waitStatus(t, time.Second, 401, func() response { return create(d2, k2.Key) })
	if r := create(d2, k3.Key); r.status != 200 {
		t.Fatalf("the rotated key: %d %s", r.status, r.body)
	}

	// The Reseller API's hash signatures use the key kept in the database,
	// until it is revoked.
	status := func() response {
		return d2.call(t, "POST", d2.base+"/topup/status", `{"trx_id":"TRX_123456789"}`,
			"Authorization", "Bearer "+seedHash(topupKeyGold, "TRX_123456789"), "Content-Type", "application/json")
	}
	if r := status(); r.status != 200 {
		t.Fatalf("topup status signed with the gold key: %d %s", r.status, r.body)
	}
	apiguard("keys", "revoke", "tu_gold")
	waitStatus(t, time.Second, 401, status)

	// A demo key revoked with the command stays revoked in a demo started
	// after: seeding adds only the key ids the database lacks.
	apiguard("keys", "revoke", "mp_b")
	waitStatus(t, time.Second, 401, func() response { return create(d1, mockPayKeyB) })
	d3 := startDemo(t, config{db: url})
	create(d3, mockPayKeyB).want(t, 401, mockUnauthorized)
	create(d3, mockPayKeyA).want(t, 200, `{"success":true,"data":{"order_id":"ORDER-A_full","amount":100000,"status":"pending"}}`)
}

// TestSeedTogether pins that demos starting at once on one new database
// all start, and seed each fixed key once.
func TestSeedTogether(t *testing.T) {
	for _, b := range dbBackends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			const n = 4
			errs := make(chan error, n)
			dbs := make(chan *keyDB, n)
			for range n {
				go func() {
					k, err := openKeyDB(context.Background(), config{db: url, now: time.Now}, io.Discard)
					errs <- err
					dbs <- k
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Error(err)
				}
				k := <-dbs
				t.Cleanup(func() { k.Close() })
			}
			k, err := openKeyDB(context.Background(), config{db: url, now: time.Now}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			want := 0
			for _, a := range apis {
				if a.keys == nil {
					continue
				}
				for _, spec := range a.keys.specs {
					want++
					info, err := k.store.Key(context.Background(), spec.Client.KeyID)
					if err != nil || info.CreatedBy != "apiguard-demo" {
						t.Errorf("%s: %+v, %v", spec.Client.KeyID, info, err)
					}
				}
			}
			var stored int
			if err := k.store.DB().QueryRow(`SELECT COUNT(*) FROM apiguard_keys`).Scan(&stored); err != nil || stored != want {
				t.Fatalf("%d keys stored (%v), want %d", stored, err, want)
			}
		})
	}
}
