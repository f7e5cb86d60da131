package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildDemo builds the demo gateway into a temporary directory and returns
// the binary's path.
func buildDemo(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build the demo: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "apiguard-demo")
	out, err := exec.Command(gobin, "build", "-o", bin, "..").CombinedOutput()
	if err != nil {
		t.Fatalf("go build the demo: %v\n%s", err, out)
	}
	return bin
}

// TestQuickSoak runs the soak for 2 s against a demo it starts, and
// requires what the 60 s run requires: no unexpected status (every
// request's status among those its kind expects), no goroutine left over
// and no heap beyond the state the run left. So CI keeps the mix in step
// with the demo's contract.
func TestQuickSoak(t *testing.T) {
	bin := buildDemo(t)
	var out bytes.Buffer
	cfg := config{
		spawn: bin, demoArgs: []string{"-token-ttl", "5m"},
		duration: 2 * time.Second, settle: time.Second,
		workers: 4, rate: 300, timeout: 10 * time.Second,
		goroutineSlack: 5, heapSlack: 2 << 20,
	}
	code := run(context.Background(), cfg, &out)
	report := out.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, report)
	}
	// Each API answered its valid requests.
	for _, line := range []string{"mockpay.create ", "midtrans.snap ", "midtrans.token ", "pay88.charge ", "topup.product ", "client.login "} {
		if !strings.Contains(report, "\n"+line) {
			t.Errorf("no %q line in the report:\n%s", line, report)
		}
	}
	if !strings.Contains(report, "unexpected: 0,") {
		t.Errorf("the report does not say no status was unexpected:\n%s", report)
	}
	t.Log("\n" + report)
}
