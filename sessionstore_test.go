package apiguard_test

import (
	"testing"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/internal/sessionstoretest"
)

func TestMemorySessionStore(t *testing.T) {
	sessionstoretest.Run(t, func(_ *testing.T, capacity int) apiguard.SessionStore {
		return apiguard.NewMemorySessionsForTest(capacity)
	})
}
