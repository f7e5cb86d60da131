package redisstore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apiguard/apiguard"
)

// replicaRing is one replica's token machinery over a shared ring.
type replicaRing struct {
	ring *apiguard.KeyRing
	sync *RingSync
	s    *apiguard.Sessions
	g    *apiguard.Guard
}

func newReplicaRing(t *testing.T, opt Option) replicaRing {
	t.Helper()
	ring, sync, err := NewKeyRing(context.Background(), shared.client(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sync.Close() })
	s, err := apiguard.NewSessions("https://api.example.com", ring)
	if err != nil {
		t.Fatal(err)
	}
	return replicaRing{ring, sync, s, apiguard.MustNew(s.SessionScheme(), apiguard.WithDialect(apiguard.Pay88()))}
}

// issue returns a token and session id signed by r.
func (r replicaRing) issue(t *testing.T) (string, string) {
	t.Helper()
	set, err := r.s.Issue(&apiguard.Client{ID: "MCH-COL-29ZTP4"})
	if err != nil {
		t.Fatal(err)
	}
	return set.AccessToken, set.SessionID
}

// status is what r answers to a call with tok.
func (r replicaRing) status(tok, sid string) int {
	req := httptest.NewRequest("POST", "/api/transactions/charges", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Session-Id", sid)
	w := httptest.NewRecorder()
	r.g.Authenticate()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, req)
	return w.Code
}

// jwks is r's published key set.
func (r replicaRing) jwks() string {
	w := httptest.NewRecorder()
	r.ring.JWKS().ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

// eventually waits up to a second for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after a second: not %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRingAcrossReplicas: replicas share one signing key from the start,
// and a rotation done through one (publish, promote, retire) reaches all:
// a token any of them signs is accepted by all, until its key is retired.
func TestRingAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	p := prefix(t)
	a, b := newReplicaRing(t, p), newReplicaRing(t, p)
	if a.ring.SigningKeyID() == "" || a.ring.SigningKeyID() != b.ring.SigningKeyID() {
		t.Fatalf("signing keys %q and %q", a.ring.SigningKeyID(), b.ring.SigningKeyID())
	}
	old := a.ring.SigningKeyID()
	tokA, sidA := a.issue(t)
	if got := b.status(tokA, sidA); got != 200 {
		t.Fatalf("a token of replica a on replica b: %d", got)
	}

	// 1. Publish: both verify with the new key, neither signs with it.
	k2, err := apiguard.GenerateSigningKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sync.Publish(ctx, k2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "k2 published on b", func() bool { return strings.Contains(b.jwks(), `"kid":"k2"`) })
	if b.ring.SigningKeyID() != old {
		t.Fatalf("b signs with %q before the promotion", b.ring.SigningKeyID())
	}

	// 2. Promote: both sign with k2; tokens of the old key still verify.
	if err := a.sync.Promote(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "k2 signing on b", func() bool { return b.ring.SigningKeyID() == "k2" })
	eventually(t, "k2 signing on a", func() bool { return a.ring.SigningKeyID() == "k2" })
	tokB, sidB := b.issue(t)
	if got := a.status(tokB, sidB); got != 200 {
		t.Errorf("a token of the new key on replica a: %d", got)
	}
	if got := b.status(tokA, sidA); got != 200 {
		t.Errorf("a token of the old key after the promotion: %d", got)
	}

	// 3. Retire: the old key's tokens stop verifying everywhere.
	if err := b.sync.Retire(ctx, "k2"); err == nil {
		t.Error("retired the signing key")
	}
	if err := b.sync.Retire(ctx, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old key retired on a", func() bool { return a.status(tokA, sidA) == 401 })
	eventually(t, "the old key retired on b", func() bool { return b.status(tokA, sidA) == 401 })
	if got := a.status(tokB, sidB); got != 200 {
		t.Errorf("a token of the new key after the retirement: %d", got)
	}

	// A replica started now loads the ring as it is.
	c := newReplicaRing(t, p)
	if c.ring.SigningKeyID() != "k2" || c.status(tokB, sidB) != 200 || c.status(tokA, sidA) != 401 {
		t.Errorf("a new replica: signer %q", c.ring.SigningKeyID())
	}
	if err := a.sync.Promote(ctx, "nope"); err == nil {
		t.Error("promoted a key that was never published")
	}
}
