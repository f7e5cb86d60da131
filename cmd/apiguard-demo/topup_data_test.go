package main

import (
	"errors"
	"sync"
	"testing"
)

// TestLedgerRefUsedOnce: of concurrent orders with one ref_id, exactly one
// is placed and debited; the others create nothing.
func TestLedgerRefUsedOnce(t *testing.T) {
	l := newLedger()
	p, _ := findProduct("1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed, reused := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.order("123", "REF_SAME", "u", "z", p, 14500)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				placed++
			case errors.Is(err, errRefUsed):
				reused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if placed != 1 || reused != 49 {
		t.Errorf("placed %d, reused %d", placed, reused)
	}
	if got := l.balance("123"); got != 1_000_000-14500 {
		t.Errorf("balance %d", got)
	}
	// The same ref_id is another account's to use.
	if _, err := l.order("456", "REF_SAME", "u", "z", p, 5000); err != nil {
		t.Errorf("other account: %v", err)
	}
	// Insufficient balance debits nothing.
	if _, err := l.order("456", "REF_BIG", "u", "z", p, 1_000_000); !errors.Is(err, errNoBalance) || l.balance("456") != 5000 {
		t.Errorf("insufficient: %v, balance %d", err, l.balance("456"))
	}
}
