package main

import (
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// tickingClock returns a clock that moves 1µs forward at every reading,
// so that each timed store call lasts exactly 1µs.
func tickingClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Microsecond) }
}

// scrape returns the admin listener's metrics as "name{label=value,...}"
// -> value, parsed with the Prometheus text parser. Labels the exporter
// adds to every series (otel_scope_*) are left out.
func scrape(t *testing.T, d *demo, admin string) map[string]float64 {
	t.Helper()
	resp, err := d.client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "apiguard_") {
			continue
		}
		for _, m := range f.GetMetric() {
			key := name + "{" + labels(m) + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count{"+labels(m)+"}"] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum{"+labels(m)+"}"] = m.GetHistogram().GetSampleSum()
			default:
				t.Errorf("%s: type %v", name, f.GetType())
			}
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		if !strings.HasPrefix(l.GetName(), "otel_scope_") {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// TestAdminMetrics: after a known mix of requests to MockPay, the admin
// listener's /metrics counts each outcome and reason exactly, and reports
// the stores' latencies and fill.
func TestAdminMetrics(t *testing.T) {
	addr := make(chan net.Addr, 1)
	d := startDemo(t, config{now: tickingClock(), adminAddr: "127.0.0.1:0", adminReady: func(a net.Addr) { addr <- a }})
	admin := (<-addr).String()

	create := d.base + "/mockpay/api/v1/payment/create"
	bearer := func(k string) []string {
		return []string{"Authorization", "Bearer " + k, "Content-Type", "application/json"}
	}
	order := `{"order_id":"ORDER-9","amount":100}`
	for _, c := range []struct {
		method, url string
		headers     []string
		status      int
	}{
		{"POST", create, bearer(mockPayKeyA), 200},                                    // allowed twice
		{"POST", create, []string{"Content-Type", "application/json"}, 401},           // missing_key
		{"POST", create, bearer("sandbox_sk_test_unknown"), 401},                      // invalid_key, unknown_key
		{"POST", create, bearer(mockPayKeyLive), 401},                                 // invalid_key, wrong_environment
		{"POST", create, bearer(mockPayKeyB), 403},                                    // allowed, then forbidden
		{"GET", d.base + "/mockpay/api/v1/payment/ORDER-9", bearer(mockPayKeyB), 404}, // allowed twice, then the handler's not_found
	} {
		if r := d.call(t, c.method, c.url, order, c.headers...); r.status != c.status {
			t.Fatalf("%s %s: %d, want %d", c.method, c.url, r.status, c.status)
		}
	}

	got := scrape(t, d, admin)
	const g = "apiguard_guard=demo,"
	want := map[string]float64{
		"apiguard_decisions_total{" + g + "apiguard_outcome=allowed,apiguard_wrapper=authenticate}":                                                              3,
		"apiguard_decisions_total{" + g + "apiguard_outcome=allowed,apiguard_wrapper=require_scope}":                                                             2,
		"apiguard_decisions_total{" + g + "apiguard_outcome=refused,apiguard_reason=missing_key,apiguard_wrapper=authenticate}":                                  1,
		"apiguard_decisions_total{apiguard_cause=unknown_key," + g + "apiguard_outcome=refused,apiguard_reason=invalid_key,apiguard_wrapper=authenticate}":       1,
		"apiguard_decisions_total{apiguard_cause=wrong_environment," + g + "apiguard_outcome=refused,apiguard_reason=invalid_key,apiguard_wrapper=authenticate}": 1,
		"apiguard_decisions_total{" + g + "apiguard_outcome=refused,apiguard_reason=forbidden,apiguard_wrapper=require_scope}":                                   1,
		"apiguard_decisions_total{" + g + "apiguard_outcome=refused,apiguard_reason=not_found,apiguard_wrapper=deny}":                                            1,
		// Five key lookups (every request with a key), 1µs each on the ticking clock.
		"apiguard_store_duration_seconds_count{" + g + "apiguard_store=key_store,apiguard_wrapper=authenticate}": 5,
		"apiguard_store_duration_seconds_sum{" + g + "apiguard_store=key_store,apiguard_wrapper=authenticate}":   5e-6,
		"apiguard_store_entries{apiguard_store_name=mockpay.keys}":                                               3,
		"apiguard_store_capacity{apiguard_store_name=mockpay.keys}":                                              100_000,
		"apiguard_store_entries{apiguard_store_name=clientsys.request_ids}":                                      0,
		"apiguard_store_capacity{apiguard_store_name=clientsys.request_ids}":                                     100_000,
		"apiguard_store_entries{apiguard_store_name=clientsys.sessions}":                                         0,
		"apiguard_store_capacity{apiguard_store_name=clientsys.sessions}":                                        100_000,
		"apiguard_store_entries{apiguard_store_name=clientsys.per_ip}":                                           0,
		"apiguard_store_capacity{apiguard_store_name=clientsys.per_ip}":                                          100_000,
		"apiguard_store_entries{apiguard_store_name=topup.product_per_ip}":                                       0,
		"apiguard_store_capacity{apiguard_store_name=topup.product_per_ip}":                                      100_000,
		"apiguard_store_entries{apiguard_store_name=topup.status_per_user}":                                      0,
		"apiguard_store_capacity{apiguard_store_name=topup.status_per_user}":                                     100_000,
		"apiguard_store_entries{apiguard_store_name=topup.order_per_ip}":                                         0,
		"apiguard_store_capacity{apiguard_store_name=topup.order_per_ip}":                                        100_000,
		"apiguard_store_entries{apiguard_store_name=topup.order_per_user}":                                       0,
		"apiguard_store_capacity{apiguard_store_name=topup.order_per_user}":                                      100_000,
		"apiguard_store_entries{apiguard_store_name=pay88.issuance}":                                             0,
		"apiguard_store_capacity{apiguard_store_name=pay88.issuance}":                                            100_000,
		"apiguard_store_entries{apiguard_store_name=pay88.failures}":                                             0,
		"apiguard_store_capacity{apiguard_store_name=pay88.failures}":                                            100_000,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !near(g, v) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %v", k, v)
		}
	}
}

func near(a, b float64) bool { return a == b || (a-b)*(a-b) < 1e-18 }

// TestAdminOff: with no -admin-addr the demo opens no admin listener, and
// its Guards have no observer (the wrappers pay a nil check).
func TestAdminOff(t *testing.T) {
	d := startDemo(t, config{})
	if r := d.call(t, "GET", d.base+"/healthz", ""); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	var cfg config
	if len(cfg.admin.observer()) != 0 {
		t.Error("an observer without an admin side")
	}
}

// runtimeFigures returns the Go runtime's figures of the admin listener's
// /metrics (query "" or "?gc=1"), by name.
func runtimeFigures(t *testing.T, d *demo, admin, query string) map[string]float64 {
	t.Helper()
	resp, err := d.client.Get("http://" + admin + "/metrics" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics%s: %d", query, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes", "go_gc_cycles_forced_gc_cycles_total"} {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Fatalf("/metrics has no single series %s", name)
		}
		m := f.GetMetric()[0]
		switch f.GetType() {
		case dto.MetricType_GAUGE:
			out[name] = m.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			out[name] = m.GetCounter().GetValue()
		default:
			t.Fatalf("%s: type %v", name, f.GetType())
		}
	}
	return out
}

// TestAdminRuntimeMetrics: the admin listener reports the demo process's
// goroutines and heap, and GET /metrics?gc=1 forces two collections (and
// only ?gc=1 does) before it reads them.
func TestAdminRuntimeMetrics(t *testing.T) {
	addr := make(chan net.Addr, 1)
	d := startDemo(t, config{adminAddr: "127.0.0.1:0", adminReady: func(a net.Addr) { addr <- a }})
	admin := (<-addr).String()

	first := runtimeFigures(t, d, admin, "?gc=1")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"} {
		if first[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, first[name])
		}
	}
	const forced = "go_gc_cycles_forced_gc_cycles_total"
	if plain := runtimeFigures(t, d, admin, ""); plain[forced] != first[forced] {
		t.Errorf("GET /metrics forced %v collections, want none", plain[forced]-first[forced])
	}
	if again := runtimeFigures(t, d, admin, "?gc=1"); again[forced] != first[forced]+2 {
		t.Errorf("GET /metrics?gc=1 forced %v collections, want 2", again[forced]-first[forced])
	}
}
