package main

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"runtime"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/otelapiguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// admin is the demo's admin side (-admin-addr): the OpenTelemetry
// instruments of otelapiguard, exported in the Prometheus text format at
// GET /metrics, with the Go runtime's figures of the demo process
// (go_goroutines, go_memstats_heap_inuse_bytes, go_memstats_heap_alloc_bytes
// and the rest of the Prometheus Go collector's, plus
// go_gc_cycles_forced_gc_cycles_total). It has its own registry, so the
// metrics are apiguard's, the exporter's and the runtime's only.
//
// GET /metrics?gc=1 collects garbage (runtime.GC, twice, so that what
// sync.Pools held is freed too) before it reads the figures, so that the
// heap figures are of live memory: the load and soak run
// (cmd/apiguard-demo/soak) compares them before and after its load. Anyone
// who reaches the admin listener can make the demo collect garbage (a
// pause of about a millisecond per collection at the demo's heap size), as
// they can read its metrics: keep it on loopback, its default.
type admin struct {
	obs      *otelapiguard.Observer
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	regs     []interface{ Unregister() error }
}

// newAdmin returns the admin side, its metrics empty.
func newAdmin() (*admin, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	obs, err := otelapiguard.New(otelapiguard.WithMeterProvider(mp))
	if err != nil {
		return nil, errors.Join(err, mp.Shutdown(context.Background()))
	}
	// The runtime's figures, and the count of forced collections, by
	// which a caller of ?gc=1 can tell that it was honoured.
	if err := reg.Register(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/cycles/forced:gc-cycles$`)}))); err != nil {
		return nil, errors.Join(err, mp.Shutdown(context.Background()))
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
			runtime.GC()
		}
		metrics.ServeHTTP(w, r)
	})
	return &admin{obs: obs, provider: mp, handler: mux}, nil
}

// observer returns the Guards' option that reports to the admin side, or
// none when there is no admin side. Every Guard of the demo is named
// "demo": the seed APIs are told apart by the wrapper and the reason.
func (a *admin) observer() []apiguard.Option {
	if a == nil {
		return nil
	}
	return []apiguard.Option{apiguard.WithObserver(a.obs.Func("demo"))}
}

// watch reports the fill of a bounded store of apiguard's (apiguard.Fill)
// against its capacity, when there is an admin side.
func (cfg config) watch(name string, s any) error {
	if cfg.admin == nil {
		return nil
	}
	reg, err := cfg.admin.obs.RegisterStore(name, s)
	if err != nil {
		return err
	}
	cfg.admin.regs = append(cfg.admin.regs, reg)
	return nil
}

// close stops the admin side's callbacks and its MeterProvider.
func (a *admin) close() error {
	if a == nil {
		return nil
	}
	var errs []error
	for _, r := range a.regs {
		errs = append(errs, r.Unregister())
	}
	errs = append(errs, a.provider.Shutdown(context.Background()))
	return errors.Join(errs...)
}
