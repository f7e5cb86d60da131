// Package bounds holds the limits that apiguard's Limiters share, so that
// the in-memory limiter and those of other modules (redisstore) accept the
// same windows.
package bounds

import "time"

// MaxWindows is the most windows one Limiter counts.
const MaxWindows = 8

// MaxPeriod is the longest Period of a window.
const MaxPeriod = 366 * 24 * time.Hour
