package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/go-redis/redis_rate/v10"
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
