package redisstore_test

import (
	"log"
	"net/http"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/redisstore"
	"github.com/redis/go-redis/v9"
)

// Every replica builds the same limiter on one Redis: together they admit
// 10 tokens per minute and 100 per hour per merchant.
func ExampleNewLimiter() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "redis:6379",
		ContextTimeoutEnabled: true, // required: timeouts bound every call
	})
	perMerchant, err := redisstore.NewLimiter(rdb,
		[]apiguard.Window{apiguard.PerMinute(10), apiguard.PerHour(100)},
		redisstore.WithPrefix("88pay:token:"), redisstore.WithTimeout(50*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	g := apiguard.MustNew(nil, apiguard.WithDialect(apiguard.Pay88()))
	limit := g.RateLimit(perMerchant, apiguard.ByHeader("X-Merchant-Id"))
	http.Handle("POST /api/auth/token", limit(http.NotFoundHandler()))
}
