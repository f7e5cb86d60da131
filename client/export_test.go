package client

import (
	"context"
	"time"
)

// SetSleep replaces how p waits before sending again after a 429, so tests
// never sleep.
func SetSleep(p *Session, sleep func(ctx context.Context, d time.Duration) error) { p.sleep = sleep }

// SleepContext is the default wait, for tests that cancel it.
var SleepContext = sleepContext

// Waiting returns the number of callers waiting for p's token request in
// flight.
func Waiting(p *Session) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flight == nil {
		return 0
	}
	return p.flight.waiters
}
