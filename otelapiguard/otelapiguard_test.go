package otelapiguard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const key = "sandbox_sk_test_otelapiguard_0001"

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// slowKeys is a KeyStore whose Lookup takes 3ms on the clock.
type slowKeys struct {
	*apiguard.MemoryKeyStore
	c *clock
}

func (s slowKeys) Lookup(ctx context.Context, k string) (*apiguard.Client, error) {
	s.c.Advance(3 * time.Millisecond)
	return s.MemoryKeyStore.Lookup(ctx, k)
}

// slowLimiter is a Limiter whose Take takes 2ms on the clock.
type slowLimiter struct {
	apiguard.Limiter
	c *clock
}

func (s slowLimiter) Take(ctx context.Context, k string, n int) (apiguard.LimitResult, error) {
	s.c.Advance(2 * time.Millisecond)
	return s.Limiter.Take(ctx, k, n)
}

// setup returns a handler guarded by Authenticate and a per-client limit
// of one request a minute, observed by an Observer reading into reader.
func setup(t *testing.T, reader sdkmetric.Reader) http.Handler {
	t.Helper()
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC).UnixNano())
	keys, err := apiguard.NewMemoryKeyStore(apiguard.WithClock(c.Now), apiguard.WithCapacity(10))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Add(apiguard.KeySpec{Key: key, Client: apiguard.Client{ID: "merchant-a", KeyID: "kid-a"}}); err != nil {
		t.Fatal(err)
	}
	lim, err := apiguard.NewMemoryLimiter([]apiguard.Window{apiguard.PerMinute(1)}, apiguard.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := New(WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.RegisterStore("keys", keys); err != nil {
		t.Fatal(err)
	}
	g := apiguard.MustNew(apiguard.Bearer(slowKeys{keys, c}), apiguard.WithClock(c.Now), apiguard.WithObserver(obs.Func("payments")))
	return apiguard.Chain(g.Authenticate(), g.RateLimit(slowLimiter{lim, c}, apiguard.ByClient()))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

func request(ctx context.Context, k string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, "GET", "/v1/charges", nil)
	if k != "" {
		r.Header.Set("Authorization", "Bearer "+k)
	}
	return r
}

// mix serves the known mix of requests: two with the key (200, then 429
// from the limit), one with an unknown key and one with none (401 both).
func mix(t *testing.T, h http.Handler, ctx func() (context.Context, func())) {
	t.Helper()
	for _, tc := range []struct {
		key    string
		status int
	}{{key, 200}, {key, 429}, {"sandbox_sk_test_unknown", 401}, {"", 401}} {
		c, end := ctx()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, request(c, tc.key))
		end()
		if w.Code != tc.status {
			t.Fatalf("key %q: status %d, want %d", tc.key, w.Code, tc.status)
		}
	}
}

// flat returns the data points of rm as "metric{k=v,...}" -> value: the
// sum, the gauge's value, or for a histogram "count/sum".
func flat(t *testing.T, rm metricdata.ResourceMetrics) map[string]string {
	t.Helper()
	out := map[string]string{}
	name := func(m string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		sort.Strings(kv)
		return m + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scope {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[name(m.Name, p.Attributes)] = itoa(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[name(m.Name, p.Attributes)] = itoa(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[name(m.Name, p.Attributes)] = itoa(int64(p.Count)) + "/" + ftoa(p.Sum)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := setup(t, reader)
	mix(t, h, func() (context.Context, func()) { return context.Background(), func() {} })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := flat(t, rm)
	want := map[string]string{
		"apiguard.decisions{apiguard.guard=payments,apiguard.outcome=allowed,apiguard.wrapper=authenticate}":                                                        "2",
		"apiguard.decisions{apiguard.guard=payments,apiguard.outcome=allowed,apiguard.wrapper=rate_limit}":                                                          "1",
		"apiguard.decisions{apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=rate_limited,apiguard.wrapper=rate_limit}":                             "1",
		"apiguard.decisions{apiguard.cause=unknown_key,apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=invalid_key,apiguard.wrapper=authenticate}": "1",
		"apiguard.decisions{apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=missing_key,apiguard.wrapper=authenticate}":                            "1",
		"apiguard.store.duration{apiguard.guard=payments,apiguard.store=key_store,apiguard.wrapper=authenticate}":                                                   "3/0.009000",
		"apiguard.store.duration{apiguard.guard=payments,apiguard.store=limiter,apiguard.wrapper=rate_limit}":                                                       "2/0.004000",
		"apiguard.ratelimit.denials{apiguard.guard=payments,apiguard.ratelimit.window.limit=1}":                                                                     "1",
		"apiguard.store.entries{apiguard.store.name=keys}":                                                                                                          "1",
		"apiguard.store.capacity{apiguard.store.name=keys}":                                                                                                         "10",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %s", k, v)
		}
	}
}

func TestSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)).Tracer("test")
	h := setup(t, sdkmetric.NewManualReader())
	mix(t, h, func() (context.Context, func()) {
		ctx, span := tracer.Start(context.Background(), "GET /v1/charges")
		return ctx, func() { span.End() }
	})
	spans := sr.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans", len(spans))
	}
	type want struct {
		events []string // each event's attributes
		attrs  string   // the span's attributes
	}
	wants := []want{
		{[]string{
			"apiguard.guard=payments,apiguard.outcome=allowed,apiguard.wrapper=authenticate",
			"apiguard.guard=payments,apiguard.outcome=allowed,apiguard.wrapper=rate_limit",
		}, ""},
		{[]string{
			"apiguard.guard=payments,apiguard.outcome=allowed,apiguard.wrapper=authenticate",
			"apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=rate_limited,apiguard.wrapper=rate_limit",
		}, "apiguard.client.id=merchant-a,apiguard.key.id=kid-a,error.type=rate_limited"},
		{[]string{
			"apiguard.cause=unknown_key,apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=invalid_key,apiguard.wrapper=authenticate",
		}, "error.type=invalid_key"},
		{[]string{
			"apiguard.guard=payments,apiguard.outcome=refused,apiguard.reason=missing_key,apiguard.wrapper=authenticate",
		}, "error.type=missing_key"},
	}
	for i, s := range spans {
		var events []string
		for _, e := range s.Events() {
			if e.Name != "apiguard.decision" {
				t.Errorf("span %d: event %q", i, e.Name)
			}
			events = append(events, join(e.Attributes))
		}
		if strings.Join(events, "\n") != strings.Join(wants[i].events, "\n") {
			t.Errorf("span %d: events\n%s\nwant\n%s", i, strings.Join(events, "\n"), strings.Join(wants[i].events, "\n"))
		}
		if got := join(s.Attributes()); got != wants[i].attrs {
			t.Errorf("span %d: attributes %q, want %q", i, got, wants[i].attrs)
		}
		if strings.Contains(join(s.Attributes())+strings.Join(events, ""), key) {
			t.Errorf("span %d carries the key", i)
		}
	}
}

// TestRegisterStoreRefusesUnknownStores: only apiguard's bounded stores,
// built by their constructors, report a fill.
func TestRegisterStoreRefusesUnknownStores(t *testing.T) {
	obs, err := New(WithMeterProvider(sdkmetric.NewMeterProvider()))
	if err != nil {
		t.Fatal(err)
	}
	var nilStore *apiguard.MemoryKeyStore
	for name, s := range map[string]any{"nil": nil, "typed nil": nilStore, "zero": &apiguard.MemoryKeyStore{}, "other": struct{}{}} {
		if _, err := obs.RegisterStore("keys", s); err == nil {
			t.Errorf("%s store accepted", name)
		}
	}
	limiter, err := apiguard.NewMemoryLimiter([]apiguard.Window{apiguard.PerMinute(1)}, apiguard.WithCapacity(2048))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.RegisterStore("limiter", limiter); err != nil {
		t.Errorf("a MemoryLimiter: %v", err)
	}
}

func join(kvs []attribute.KeyValue) string {
	var s []string
	for _, a := range kvs {
		s = append(s, string(a.Key)+"="+a.Value.String())
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
