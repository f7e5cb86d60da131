package apiguard

// NewMemorySessionsForTest gives the external tests the memory
// SessionStore, for the suite every SessionStore runs.
func NewMemorySessionsForTest(capacity int) SessionStore { return newMemorySessions(capacity) }
