// Package otelapiguard turns the decisions of apiguard's Guards into
// OpenTelemetry metrics, and into events and attributes of the request's
// span.
//
// Make one Observer for a program, give each Guard its own observer
// function, named after the API it guards, and register every bounded
// store whose fill should be watched:
//
//	obs, err := otelapiguard.New()
//	...
//	g, err := apiguard.New(apiguard.Bearer(keys), apiguard.WithObserver(obs.Func("payments")))
//	...
//	reg, err := obs.RegisterStore("keys", keys) // any of apiguard's bounded stores
//	defer reg.Unregister()
//
// # Metrics
//
// Every attribute of a metric comes from a bounded set (the program's
// Guard names and stores, the package's wrapper names, reason codes and
// causes, the configured windows): never a client id, a key id or an IP.
//
//	apiguard.decisions        counter, {decision}: one per decision of a wrapper.
//	                          Attributes apiguard.guard, apiguard.wrapper,
//	                          apiguard.outcome ("allowed" or "refused"), and
//	                          for a refusal apiguard.reason (the stable code,
//	                          such as "invalid_key") and, when known,
//	                          apiguard.cause (Decision.Cause, such as
//	                          "expired_key").
//	apiguard.store.duration   histogram, s: the time a decision spent in one
//	                          kind of store, recorded when it is above zero.
//	                          Attributes apiguard.guard, apiguard.wrapper,
//	                          apiguard.store ("key_store", "limiter" or
//	                          "replay_store").
//	apiguard.ratelimit.denials counter, {request}: rate-limit refusals.
//	                          Attributes apiguard.guard and
//	                          apiguard.ratelimit.window.limit (the Limit of the
//	                          refusing window, an int).
//	apiguard.store.entries    gauge, {entry}: entries held by a registered
//	                          store. Attribute apiguard.store.name.
//	apiguard.store.capacity   gauge, {entry}: the capacity registered with it.
//
// Through the OpenTelemetry Prometheus exporter these read
// apiguard_decisions_total, apiguard_store_duration_seconds,
// apiguard_ratelimit_denials_total, apiguard_store_entries and
// apiguard_store_capacity, with the dots of attribute names as
// underscores.
//
// # Spans
//
// Where the request's context carries a recording span (one a server
// instrumentation such as otelhttp started), every decision adds to it an
// event "apiguard.decision" with the attributes of apiguard.decisions, and
// a refusal sets on the span error.type (the reason code, as OpenTelemetry's
// semantic conventions use that attribute) and, when a Scheme named the
// caller, apiguard.client.id and apiguard.key.id. Spans are per request, so
// the ids are not a cardinality risk there; they are never a secret. The
// span's status is left to the server instrumentation, which sets it from
// the response's status code.
package otelapiguard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apiguard/apiguard"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of the package's meter.
const scope = "github.com/apiguard/apiguard/otelapiguard"

// Attribute keys.
const (
	keyGuard   = attribute.Key("apiguard.guard")
	keyWrapper = attribute.Key("apiguard.wrapper")
	keyOutcome = attribute.Key("apiguard.outcome")
	keyReason  = attribute.Key("apiguard.reason")
	keyCause   = attribute.Key("apiguard.cause")
	keyStore   = attribute.Key("apiguard.store")
	keyName    = attribute.Key("apiguard.store.name")
	keyWindow  = attribute.Key("apiguard.ratelimit.window.limit")
	keyClient  = attribute.Key("apiguard.client.id")
	keyKeyID   = attribute.Key("apiguard.key.id")
	keyErrType = attribute.Key("error.type")
)

// durationBounds are the buckets of apiguard.store.duration, in seconds:
// from 10µs (a map in memory) to 1s (a backend timing out).
var durationBounds = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// An Observer records apiguard Decisions as metrics and span events. It is
// safe for concurrent use.
type Observer struct {
	meter     metric.Meter
	decisions metric.Int64Counter
	duration  metric.Float64Histogram
	denials   metric.Int64Counter
	entries   metric.Int64ObservableGauge
	capacity  metric.Int64ObservableGauge
}

// An Option configures an Observer.
type Option func(*Observer) error

// WithMeterProvider makes an Observer (New) create its instruments with
// mp. The default is the global MeterProvider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *Observer) error {
		if mp == nil {
			return errors.New("otelapiguard: nil MeterProvider")
		}
		o.meter = mp.Meter(scope)
		return nil
	}
}

// New returns an Observer whose instruments are those listed in the
// package documentation.
func New(opts ...Option) (*Observer, error) {
	o := &Observer{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.meter == nil {
		o.meter = otel.GetMeterProvider().Meter(scope)
	}
	var errs [5]error
	o.decisions, errs[0] = o.meter.Int64Counter("apiguard.decisions",
		metric.WithDescription("Decisions of apiguard's wrappers, by outcome and reason."), metric.WithUnit("{decision}"))
	o.duration, errs[1] = o.meter.Float64Histogram("apiguard.store.duration",
		metric.WithDescription("Time a decision spent in a key store, limiter or replay store."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	o.denials, errs[2] = o.meter.Int64Counter("apiguard.ratelimit.denials",
		metric.WithDescription("Requests refused by a rate limit, by refusing window."), metric.WithUnit("{request}"))
	o.entries, errs[3] = o.meter.Int64ObservableGauge("apiguard.store.entries",
		metric.WithDescription("Entries held by a bounded store."), metric.WithUnit("{entry}"))
	o.capacity, errs[4] = o.meter.Int64ObservableGauge("apiguard.store.capacity",
		metric.WithDescription("Capacity configured for a bounded store."), metric.WithUnit("{entry}"))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("otelapiguard: %w", err)
	}
	return o, nil
}

// Func returns the observer function of a Guard named guard, for
// apiguard.WithObserver. guard becomes the apiguard.guard attribute: use a
// name per API ("payments", "admin"), never one per client.
func (o *Observer) Func(guard string) func(apiguard.Decision) {
	g := keyGuard.String(guard)
	return func(d apiguard.Decision) { o.record(g, d) }
}

func (o *Observer) record(guard attribute.KeyValue, d apiguard.Decision) {
	ctx := context.Background()
	if d.Request != nil {
		ctx = d.Request.Context()
	}
	wrapper := keyWrapper.String(d.Wrapper)
	var buf [5]attribute.KeyValue
	attrs := append(buf[:0], guard, wrapper)
	if d.Allowed {
		attrs = append(attrs, keyOutcome.String("allowed"))
	} else {
		attrs = append(attrs, keyOutcome.String("refused"))
		if d.Err != nil {
			attrs = append(attrs, keyReason.String(d.Err.Code))
		}
		if d.Cause != "" {
			attrs = append(attrs, keyCause.String(d.Cause))
		}
	}
	o.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))

	for _, s := range [...]struct {
		name string
		d    time.Duration
	}{{"key_store", d.KeyStore}, {"limiter", d.Limiter}, {"replay_store", d.ReplayStore}} {
		if s.d > 0 {
			o.duration.Record(ctx, s.d.Seconds(), metric.WithAttributes(guard, wrapper, keyStore.String(s.name)))
		}
	}
	if !d.Allowed && d.Wrapper == "rate_limit" && d.Err != nil && d.Err.Code == "rate_limited" {
		o.denials.Add(ctx, 1, metric.WithAttributes(guard, keyWindow.Int(d.Limit.Limit)))
	}

	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent("apiguard.decision", trace.WithAttributes(attrs...))
	if !d.Allowed {
		if d.Err != nil {
			span.SetAttributes(keyErrType.String(d.Err.Code))
		}
		if d.Client != nil {
			span.SetAttributes(keyClient.String(d.Client.ID), keyKeyID.String(d.Client.KeyID))
		}
	}
}

// RegisterStore reports the fill of store, one of apiguard's bounded stores
// (MemoryKeyStore, CachedKeyStore, MemoryLimiter, MemoryReplayStore,
// Sessions: see apiguard.Fill), named name (the apiguard.store.name
// attribute: "keys", "limiter", "replay"), as its entries against its
// capacity, on every collection. Unregister the returned Registration when
// the store is dropped. It fails for a value apiguard.Fill does not know.
func (o *Observer) RegisterStore(name string, store any) (metric.Registration, error) {
	if _, _, ok := apiguard.Fill(store); !ok {
		return nil, fmt.Errorf("otelapiguard: RegisterStore: %q is a %T, not one of apiguard's bounded stores", name, store)
	}
	set := metric.WithAttributeSet(attribute.NewSet(keyName.String(name)))
	return o.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		n, capacity, _ := apiguard.Fill(store)
		ob.ObserveInt64(o.entries, int64(n), set)
		ob.ObserveInt64(o.capacity, int64(capacity), set)
		return nil
	}, o.entries, o.capacity)
}
