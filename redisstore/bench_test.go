package redisstore

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// BenchmarkLimiterTake measures a Take on the test's redis-server over
// loopback: one window (through redis_rate), two windows (the script), and
// redis_rate alone as the floor.
func BenchmarkLimiterTake(b *testing.B) {
	rdb := shared.client(b)
	ctx := context.Background()
	lots := apiguard.Window{Limit: 1_000_000, Period: 1_000_000_000_000}
	for _, bc := range []struct {
		name    string
		windows []apiguard.Window
	}{{"one window", []apiguard.Window{lots}}, {"two windows", []apiguard.Window{lots, lots}}} {
		l := mustLimiter(b, rdb, bc.windows, prefix(b))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Take(ctx, "ip:203.0.113.7", 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("floor=redis_rate", func(b *testing.B) {
		rr := redis_rate.NewLimiter(rdb)
		limit := redis_rate.Limit{Rate: lots.Limit, Burst: lots.Limit, Period: lots.Period}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rr.AllowN(ctx, "bench:ip:203.0.113.7", limit, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSessionStore measures the SessionStore's calls on the test's
// redis-server over loopback beside the raw go-redis round trips they
// make: Revoked (every token verified) is one MGET of two keys, Rotate
// (every refresh) one EVALSHA; the floor of both is a GET.
func BenchmarkSessionStore(b *testing.B) {
	rdb := shared.client(b)
	ctx := context.Background()
	s, err := NewSessionStore(rdb, prefix(b))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	end := now.Add(time.Hour)
	if err := s.RevokeSubject(ctx, "someone-else", now, end); err != nil {
		b.Fatal(err)
	}
	b.Run("Revoked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if revoked, err := s.Revoked(ctx, "sess_0b7c5f0e-6a9e-4a53-9d4b-3f1c2e8a7d10", "user-123", now, now); err != nil || revoked {
				b.Fatal(revoked, err)
			}
		}
	})
	b.Run("Rotate", func(b *testing.B) {
		if err := s.Start(ctx, "sess_bench", "user-123", "r0", now, end); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			next := "r" + strconv.Itoa(i+1)
			if e, err := s.Rotate(ctx, "sess_bench", "r"+strconv.Itoa(i), next, now, end); err != nil || e.IsZero() {
				b.Fatal(e, err)
			}
			i++
		}
	})
	b.Run("floor=MGET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := rdb.MGet(ctx, "bench:rev:s:x", "bench:rev:u:y").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor=GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := rdb.Get(ctx, "bench:absent").Err(); err != redis.Nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSessionsVerify is a whole access-token verification (ES256 and
// the revocation check) with the memory store and with the Redis store.
func BenchmarkSessionsVerify(b *testing.B) {
	rdb := shared.client(b)
	ctx := context.Background()
	signing, err := apiguard.GenerateSigningKey("k1")
	if err != nil {
		b.Fatal(err)
	}
	ring, err := apiguard.NewKeyRing(signing)
	if err != nil {
		b.Fatal(err)
	}
	store, err := NewSessionStore(rdb, prefix(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts []apiguard.Option
	}{{"memory", nil}, {"redis", []apiguard.Option{apiguard.WithSessionStore(store)}}} {
		s, err := apiguard.NewSessions("https://api.example.com", ring, bc.opts...)
		if err != nil {
			b.Fatal(err)
		}
		set, err := s.Login(ctx, &apiguard.Client{ID: "user-123"})
		if err != nil {
			b.Fatal(err)
		}
		scheme := s.AccessScheme()
		r := httptest.NewRequest("GET", "/me", nil)
		r.Header.Set("Authorization", "Bearer "+set.AccessToken)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := scheme.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIDStoreSeen measures a Seen of a fresh id on the test's
// redis-server over loopback, against the floor of a bare SET NX of the
// same key with the same expiry.
func BenchmarkIDStoreSeen(b *testing.B) {
	rdb := shared.client(b)
	ctx := context.Background()
	s := mustIDStore(b, prefix(b), WithTimeout(time.Minute)) // a busy machine is not a failure
	b.Run("seen", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Seen(ctx, "app\x00ip:203.0.113.7", "req-"+strconv.Itoa(i), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor=setnx", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := rdb.SetNX(ctx, "bench:rid:app:"+digest("req-"+strconv.Itoa(i)), 1, time.Minute).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
