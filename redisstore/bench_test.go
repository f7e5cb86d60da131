package redisstore

import (
	"context"
	"testing"

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
