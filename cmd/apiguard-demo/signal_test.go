package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestSignalShutdown builds the gateway, starts it on free ports, checks it
// answers, and sends SIGINT and SIGTERM: it must exit 0, promptly.
func TestSignalShutdown(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "apiguard-demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-tls-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// The banner names the plain address.
			addr := regexp.MustCompile(`http:\s+(http://127\.0\.0\.1:\d+)`)
			sc := bufio.NewScanner(stdout)
			base := ""
			for sc.Scan() {
				if m := addr.FindStringSubmatch(sc.Text()); m != nil {
					base = m[1]
					break
				}
			}
			if base == "" {
				t.Fatal("no address in the banner")
			}
			go func() {
				for sc.Scan() {
				}
			}()
			resp, err := http.Get(base + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthz: %v %v", resp, err)
			}
			resp.Body.Close()
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still running 10 s after the signal")
			}
		})
	}
}
