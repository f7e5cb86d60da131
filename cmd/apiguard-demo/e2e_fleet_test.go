package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/redistest"
	"github.com/apiguard/apiguard/redisstore"
)

var (
	demoBinOnce sync.Once
	demoBin     string // the demo built once for the tests that start processes
	demoBinErr  error
)

// demoBinary builds the gateway once per test binary (TestMain removes it).
func demoBinary(t *testing.T) string {
	t.Helper()
	demoBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "apiguard-demo-bin-")
		if err != nil {
			demoBinErr = err
			return
		}
		demoBin = filepath.Join(dir, "apiguard-demo")
		if out, err := exec.Command("go", "build", "-o", demoBin, ".").CombinedOutput(); err != nil {
			demoBinErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if demoBinErr != nil {
		t.Fatal(demoBinErr)
	}
	return demoBin
}

// startProcess runs the gateway as a process of its own, with args after
// its free loopback addresses, until the test ends.
func startProcess(t *testing.T, args ...string) *demo {
	t.Helper()
	cmd := exec.Command(demoBinary(t), append([]string{"-addr", "127.0.0.1:0", "-tls-addr", "127.0.0.1:0", "-admin-addr", ""}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo process: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("demo process did not stop in 10s")
		}
	})
	plain := regexp.MustCompile(`^\s+http:\s+(http://\S+)`)
	secure := regexp.MustCompile(`^\s+https:\s+(https://\S+)`)
	sc := bufio.NewScanner(stdout)
	d := &demo{}
	for sc.Scan() && (d.base == "" || d.secure == "") {
		if m := plain.FindStringSubmatch(sc.Text()); m != nil {
			d.base = m[1]
		}
		if m := secure.FindStringSubmatch(sc.Text()); m != nil {
			d.secure = m[1]
		}
	}
	if d.base == "" || d.secure == "" {
		t.Fatal("no addresses in the banner")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	d.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return d
}

// TestFleet runs two demo processes on one redis-server and proves,
// through HTTP alone, that they behave as one gateway (issue 12): every
// documented limit is exact across both with requests alternating between
// them, a request id used on one is 409 on the other, tokens and refresh
// tokens minted on one work on the other, and a refresh token reused on one
// kills the session on both.
func TestFleet(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	reps := [2]*demo{startProcess(t, "-redis", srv.Addr), startProcess(t, "-redis", srv.Addr)}
	a, b := reps[0], reps[1]

	// Before the limits use up the gold user's orders of this minute.
	t.Run("RefID", func(t *testing.T) {
		o := order{key: topupKeyGold, ref: "fleet-ref-1", product: "1", price: "14500", reqTime: strconv.FormatInt(time.Now().Unix(), 10)}
		if r := o.send(t, a, "X-Forwarded-For", "203.0.113.70"); r.status != 200 {
			t.Fatalf("order on A: %d %s", r.status, r.body)
		}
		o.send(t, b, "X-Forwarded-For", "203.0.113.70").want(t, 409, reseller(409, "ref_id already used"))
	})

	t.Run("Limits", func(t *testing.T) {
		gold := []string{"Authorization", "Bearer " + topupKeyGold}
		exactLimit(t, reps, "topup product, 20/min per IP", 20, time.Minute, 200, func(d *demo) response {
			return d.call(t, "GET", d.base+"/topup/product", "", append(gold, "X-Forwarded-For", "203.0.113.50")...)
		})
		exactLimit(t, reps, "topup status, 30/min per user", 30, time.Minute, 200, func(d *demo) response {
			return d.call(t, "POST", d.base+"/topup/status", `{"trx_id":"TRX_123456789"}`,
				"Content-Type", "application/json", "Authorization", "Bearer "+seedHash(topupKeyGold, "TRX_123456789"))
		})
		n := 0
		// RefID above took two of the gold user's 30 orders of this minute.
		exactLimit(t, reps, "topup order, 30/min per user", 28, 28*time.Minute/30, 200, func(d *demo) response {
			n++
			return order{key: topupKeyGold, ref: "fleet-" + strconv.Itoa(n), product: "1", price: "14500",
				reqTime: strconv.FormatInt(time.Now().Unix(), 10)}.send(t, d, "X-Forwarded-For", "203.0.113.51")
		})
		exactLimit(t, reps, "topup order, 100/min per IP (counted before the key)", 100, time.Minute, 401, func(d *demo) response {
			return order{key: "topup_unknown_key", ref: "x", product: "1", price: "14500",
				reqTime: strconv.FormatInt(time.Now().Unix(), 10)}.send(t, d, "X-Forwarded-For", "203.0.113.53")
		})
		exactLimit(t, reps, "client system, 120/min per IP", 120, time.Minute, 401, func(d *demo) response {
			return d.call(t, "POST", d.base+"/client/auth/login", "{}", "X-Forwarded-For", "203.0.113.52")
		})
	})

	t.Run("RequestID", func(t *testing.T) {
		h := []string{"x-app-key", clientAppKey, "x-request-id", "fleet-id-1", "Content-Type", "application/json"}
		creds := `{"username":"demo","password":"demo-password"}`
		if r := a.call(t, "POST", a.base+"/client/auth/login", creds, h...); r.status != 200 {
			t.Fatalf("first use on A: %d %s", r.status, r.body)
		}
		if r := b.call(t, "POST", b.base+"/client/auth/login", creds, h...); r.status != 409 {
			t.Errorf("second use, on B: %d %s; want 409", r.status, r.body)
		}
	})

	t.Run("Pay88Token", func(t *testing.T) {
		r := a.call(t, "POST", a.secure+"/88pay/api/auth/token", "", "x-api-key", pay88Key, "x-merchant-id", pay88Merchant)
		if r.status != 200 {
			t.Fatalf("token on A: %d %s", r.status, r.body)
		}
		tok, sid := r.field(t, "data.access_token").(string), r.field(t, "data.session_id").(string)
		r = b.call(t, "POST", b.secure+"/88pay/api/transactions/charges", `{"flow":"PAYIN","method_code":"CARDS","amount":50000,"currency":"COP","country":"COL"}`,
			"Content-Type", "application/json", "Authorization", "Bearer "+tok, "x-session-id", sid)
		if r.status != 200 {
			t.Errorf("A's token on B: %d %s", r.status, r.body)
		}
	})

	t.Run("ClientSessions", func(t *testing.T) {
		n := 0
		hdr := func(extra ...string) []string {
			n++
			return append([]string{"x-app-key", clientAppKey, "x-request-id", "fleet-session-" + strconv.Itoa(n), "Content-Type", "application/json"}, extra...)
		}
		r := a.call(t, "POST", a.base+"/client/auth/login", `{"username":"demo","password":"demo-password"}`, hdr("X-Forwarded-For", "203.0.113.60")...)
		if r.status != 200 {
			t.Fatalf("login on A: %d %s", r.status, r.body)
		}
		userTok, refresh := r.field(t, "user_token").(string), r.field(t, "refresh_token").(string)
		// A's refresh token is exchanged on B...
		r = b.call(t, "POST", b.base+"/client/auth/access-token", "", hdr("Authorization", "Bearer "+refresh, "X-Forwarded-For", "203.0.113.60")...)
		if r.status != 200 {
			t.Fatalf("A's refresh token on B: %d %s", r.status, r.body)
		}
		access := r.field(t, "access_token").(string)
		for name, d := range map[string]*demo{"A": a, "B": b} {
			if r := d.call(t, "GET", d.base+"/client/me", "", hdr("Authorization", "Bearer "+access, "x-user-token", userTok, "X-Forwarded-For", "203.0.113.60")...); r.status != 200 {
				t.Errorf("B's access token on %s: %d %s", name, r.status, r.body)
			}
		}
		// ...and its reuse on A kills the session on both.
		if r := a.call(t, "POST", a.base+"/client/auth/access-token", "", hdr("Authorization", "Bearer "+refresh, "X-Forwarded-For", "203.0.113.60")...); r.status != 401 {
			t.Fatalf("reuse on A: %d %s; want 401", r.status, r.body)
		}
		for name, d := range map[string]*demo{"A": a, "B": b} {
			if r := d.call(t, "GET", d.base+"/client/me", "", hdr("Authorization", "Bearer "+access, "x-user-token", userTok, "X-Forwarded-For", "203.0.113.60")...); r.status != 401 {
				t.Errorf("access token of a session killed on A, on %s: %d %s; want 401", name, r.status, r.body)
			}
		}
	})

	t.Run("Pay88Issuance", func(t *testing.T) {
		tokenOn := func(d *demo) response {
			return d.call(t, "POST", d.secure+"/88pay/api/auth/token", "", "x-api-key", pay88Key, "x-merchant-id", pay88Merchant)
		}
		// Pay88Token took one token already: 9 more this minute, across both.
		exactLimit(t, reps, "88Pay issuance, 10/min per merchant", 9, time.Minute, 200, tokenOn)
		// The hour: the test takes the place of the minutes that would
		// pass (the windows are the Redis server's, on its clock). It
		// empties the minute's bucket, and takes from the hour's what 8
		// more minutes of ten would: 10 + 80 of its 100 are gone.
		ctx := context.Background()
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
		defer rdb.Close()
		bucket := "client:" + pay88Merchant
		minute, err := redisstore.NewLimiter(rdb, []apiguard.Window{apiguard.PerMinute(10)}, redisstore.WithPrefix(redisPrefix+"pay88.issuance:"))
		if err != nil {
			t.Fatal(err)
		}
		hour, err := redisstore.NewLimiter(rdb, []apiguard.Window{apiguard.PerHour(100)}, redisstore.WithPrefix(redisPrefix+"pay88.issuance:"))
		if err != nil {
			t.Fatal(err)
		}
		if res, err := hour.Take(ctx, bucket, 0); err != nil || res.Remaining != 90 {
			t.Fatalf("the hour's bucket after 10 tokens: %+v, %v; want 90 remaining (is it the demo's?)", res, err)
		}
		if res, err := hour.Take(ctx, bucket, 80); err != nil || !res.Allowed {
			t.Fatalf("taking 80 from the hour: %+v, %v", res, err)
		}
		if err := rdb.Del(ctx, "rate:{"+redisPrefix+"pay88.issuance:rl:"+bucket+"}:10/1m0s").Err(); err != nil {
			t.Fatal(err)
		}
		if res, err := minute.Take(ctx, bucket, 0); err != nil || res.Remaining != 10 {
			t.Fatalf("the minute's bucket once emptied: %+v, %v", res, err)
		}
		exactLimit(t, reps, "88Pay issuance, 100/h per merchant", 10, time.Hour, 200, tokenOn)
	})
}

// exactLimit sends a limit's requests, alternating between the replicas,
// until one past it: exactly limit pass (status ok) across the fleet, plus
// at most what the bucket gets back while the requests run (one token per
// period/limit), and the next is 429 with Retry-After.
func exactLimit(t *testing.T, reps [2]*demo, name string, limit int, period time.Duration, ok int, call func(*demo) response) {
	t.Helper()
	start := time.Now()
	passed := 0
	var refused *response
	for i := 0; refused == nil && i < 2*limit+10; i++ {
		r := call(reps[i%2])
		switch r.status {
		case ok:
			passed++
		case 429:
			refused = &r
		default:
			t.Fatalf("%s: request %d on replica %d: %d %s", name, i+1, i%2, r.status, r.body)
		}
	}
	back := int(time.Since(start) / (period / time.Duration(limit)))
	if passed < limit || passed > limit+back {
		t.Errorf("%s: %d requests passed across two replicas before a 429, want %d (+%d refilled while they ran)", name, passed, limit, back)
	}
	if refused == nil || refused.header.Get("Retry-After") == "" {
		t.Errorf("%s: no 429 with Retry-After past the limit", name)
	}
	t.Logf("%s: %d passed, then 429 (%v)", name, passed, time.Since(start).Round(time.Millisecond))
}
