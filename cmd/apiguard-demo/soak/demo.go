package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// figures are the demo process's runtime figures and the fill of
// apiguard's stores, as its admin listener reports them.
type figures struct {
	goroutines, heapInuse, heapAlloc float64
	stores                           map[string]float64 // apiguard_store_entries by store name
}

// storeEntries is the number of entries in all of apiguard's stores.
func (f figures) storeEntries() float64 {
	var n float64
	for _, v := range f.stores {
		n += v
	}
	return n
}

// scrape reads the admin listener's /metrics, collecting garbage first
// (?gc=1) if gc.
func scrape(hc *http.Client, admin string, gc bool) (figures, error) {
	u := "http://" + admin + "/metrics"
	if gc {
		u += "?gc=1"
	}
	resp, err := hc.Get(u)
	if err != nil {
		return figures{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return figures{}, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return figures{}, err
	}
	one := func(name string) (float64, error) {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) != 1 || f.GetType() != dto.MetricType_GAUGE {
			return 0, fmt.Errorf("%s has no gauge %s: run a demo whose admin listener reports the Go runtime", u, name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	var fig figures
	var errs []error
	for _, v := range []struct {
		dst  *float64
		name string
	}{{&fig.goroutines, "go_goroutines"}, {&fig.heapInuse, "go_memstats_heap_inuse_bytes"}, {&fig.heapAlloc, "go_memstats_heap_alloc_bytes"}} {
		var err error
		*v.dst, err = one(v.name)
		errs = append(errs, err)
	}
	fig.stores = map[string]float64{}
	if f, ok := fams["apiguard_store_entries"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "apiguard_store_name" {
					fig.stores[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return fig, errors.Join(errs...)
}

// demoProcess is a demo gateway the soak started (-spawn).
type demoProcess struct {
	cmd               *exec.Cmd
	plain, tls, admin string
	mu                sync.Mutex
	output            bytes.Buffer
	exited            chan struct{}
	exitErr           error
}

func (d *demoProcess) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.output.Len() < 64<<10 {
		d.output.Write(p)
	}
	return len(p), nil
}

func (d *demoProcess) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.output.String()
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// spawn starts the demo binary bin on free loopback ports with the extra
// arguments args, and waits until it answers /healthz and its admin
// listener answers. A port taken between its choice and the demo's start
// is tried again, twice.
func spawn(bin string, args []string) (*demoProcess, error) {
	var err error
	for range 3 {
		var d *demoProcess
		if d, err = spawnOnce(bin, args); err == nil {
			return d, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

func spawnOnce(bin string, args []string) (*demoProcess, error) {
	d := &demoProcess{exited: make(chan struct{})}
	for _, p := range []*string{&d.plain, &d.tls, &d.admin} {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	d.cmd = exec.Command(bin, append([]string{"-addr", d.plain, "-tls-addr", d.tls, "-admin-addr", d.admin}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.exitErr = d.cmd.Wait()
		close(d.exited)
	}()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("the demo exited at start (%v): %s", d.exitErr, d.log())
		default:
		}
		ok := true
		for _, u := range []string{"http://" + d.plain + "/healthz", "http://" + d.admin + "/metrics"} {
			resp, err := hc.Get(u)
			if err != nil {
				ok = false
				break
			}
			resp.Body.Close()
			ok = ok && resp.StatusCode == 200
		}
		if ok {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("the demo did not answer in 15s: %s", d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks the demo to shut down (SIGTERM) and kills it if it has not
// within 10 s; it returns the demo's exit error, if any.
func (d *demoProcess) stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return errors.New("the demo did not stop in 10s after SIGTERM; killed")
	}
	return d.exitErr
}
