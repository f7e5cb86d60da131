package main

import (
	"strconv"
	"testing"
	"time"
)

// TestPay88FailedAttempts: wrong-key guesses at 88Pay's token endpoint get
// 429 after five a minute, from the guesser's address and from its /24 at
// that merchant, even with the right key, while the real merchant, from
// another network, still gets its token.
func TestPay88FailedAttempts(t *testing.T) {
	clock := newFakeClock()
	d := startDemo(t, config{now: clock.Now})
	tokenURL := d.secure + "/88pay/api/auth/token"
	invalid := `{"status":"Error","code":401,"message":"Invalid API key or merchant ID"}`
	limited := `{"status":"Error","code":429,"message":"Rate limit exceeded"}`
	guess := func(ip, key, merchant string) response {
		return d.call(t, "POST", tokenURL, "", "X-Forwarded-For", ip, "x-api-key", key, "x-merchant-id", merchant)
	}
	for i := range 5 {
		guess("198.51.100.7", "sk_test_guess"+strconv.Itoa(i), pay88Merchant).want(t, 401, invalid)
	}
	r := guess("198.51.100.7", "sk_test_guess5", pay88Merchant)
	r.want(t, 429, limited)
	if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 1 || ra > 12 {
		t.Errorf("Retry-After %q, want 1 to 12 (a token every 12 s)", r.header.Get("Retry-After"))
	}
	// No oracle: the right key from the guesser's address is refused too,
	// and so is a guess from its /24 at the same merchant.
	guess("198.51.100.7", pay88Key, pay88Merchant).want(t, 429, limited)
	guess("198.51.100.8", "sk_test_guess6", pay88Merchant).want(t, 429, limited)
	// The real merchant, from elsewhere, gets its token.
	ok := guess("203.0.113.9", pay88Key, pay88Merchant)
	if ok.status != 200 || ok.field(t, "data.access_token") == nil {
		t.Fatalf("the merchant from another network: %d %s", ok.status, ok.body)
	}
	ok = d.call(t, "POST", tokenURL, "", "x-api-key", pay88Key, "x-merchant-id", pay88Merchant) // loopback, no forwarding
	if ok.status != 200 {
		t.Fatalf("the merchant from loopback: %d %s", ok.status, ok.body)
	}
	// A token refills every 12 s: one more guess, then 429 again.
	clock.Advance(12 * time.Second)
	guess("198.51.100.7", "sk_test_guess7", pay88Merchant).want(t, 401, invalid)
	guess("198.51.100.7", "sk_test_guess8", pay88Merchant).want(t, 429, limited)
}
