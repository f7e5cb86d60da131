package apiguard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The client-system API (seed 003): user, refresh and access tokens.

func bearer(tok string) *http.Request {
	r := httptest.NewRequest("POST", "/client/auth/x", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func userCall(access, user string) *http.Request {
	r := bearer(access)
	if user != "" {
		r.Header.Set("x-user-token", user)
	}
	return r
}

func login(t *testing.T, f *sessFixture, id string) *TokenSet {
	t.Helper()
	set, err := f.s.Login(context.Background(), &Client{ID: id, Env: Sandbox, Scopes: []string{"profile:read"}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestLogin(t *testing.T) {
	f := newSessFixture(t, WithEnvironment(AnyEnvironment))
	set := login(t, f, "demo")
	b, _ := json.Marshal(set)
	var got map[string]any
	json.Unmarshal(b, &got)
	if len(got) != 4 || got["expires_in"] != 60.0 || got["user_token"] == "" || got["access_token"] == "" || got["refresh_token"] == "" {
		t.Errorf("login JSON %s, want user_token, access_token, refresh_token and expires_in", b)
	}
	if !sessionIDPattern.MatchString(set.SessionID) {
		t.Errorf("session id %q", set.SessionID)
	}
	// Refresh and access tokens never outlive the session's user token.
	f2 := newSessFixture(t, WithTokenLifetime(UserToken, 30*time.Second), WithTokenLifetime(RefreshToken, time.Hour))
	short := login(t, f2, "demo")
	if short.ExpiresIn != 30 {
		t.Errorf("access token outlives the user token: expires_in %d", short.ExpiresIn)
	}
	// Half a second past the end: within the leeway for the token, but the
	// session is over.
	f2.clock.Advance(30*time.Second + 500*time.Millisecond)
	if _, err := f2.s.Exchange(bearer(short.RefreshToken), RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("refresh token outlived the user token: %v", err)
	}
}

// TestTokenKinds: each kind is accepted where it belongs and refused
// (401) everywhere else.
func TestTokenKinds(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	other := login(t, f, "demo") // another session of the same user
	access := MustNew(f.s.AccessScheme(), WithDialect(clientSystem()))
	user := MustNew(f.s.UserScheme(), WithDialect(clientSystem()))
	// The client-system API's dialect: Indonesian unless x-language asks
	// for English.
	const invalid = `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Token tidak valid atau kedaluwarsa","code":"invalid_token"}`
	enReq := bearer(set.RefreshToken)
	enReq.Header.Set("x-language", "en")
	wantBody(t, serve(access.Authenticate()(okHandler), enReq), 401,
		`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Invalid or expired token","code":"invalid_token"}`)
	for _, tc := range []struct {
		name string
		g    *Guard
		req  *http.Request
		ok   bool
	}{
		{"access token on a regular call", access, bearer(set.AccessToken), true},
		{"refresh token on a regular call", access, bearer(set.RefreshToken), false},
		{"user token on a regular call", access, bearer(set.UserToken), false},
		{"no token on a regular call", access, bearer(""), false},
		{"user call", user, userCall(set.AccessToken, set.UserToken), true},
		{"user call without x-user-token", user, userCall(set.AccessToken, ""), false},
		{"user call with Bearer in x-user-token", user, userCall(set.AccessToken, "Bearer "+set.UserToken), false},
		{"user call with the user token twice", user, userCall(set.UserToken, set.UserToken), false},
		{"user call with the access token twice", user, userCall(set.AccessToken, set.AccessToken), false},
		{"user call with a refresh token as user token", user, userCall(set.AccessToken, set.RefreshToken), false},
		{"user call with tokens of two sessions", user, userCall(set.AccessToken, other.UserToken), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.g.Authenticate()(okHandler), tc.req)
			if tc.ok {
				if w.Code != 200 || w.Header().Get("X-Client") != "demo" {
					t.Errorf("got %d %s", w.Code, w.Body)
				}
				return
			}
			wantBody(t, w, 401, invalid)
		})
	}
	// Minting: a refresh token only mints access tokens, a user token only
	// refresh tokens.
	for _, kind := range []TokenKind{RefreshToken, UserToken} {
		if _, err := f.s.Exchange(bearer(set.AccessToken), kind); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Exchange(access token, %v): %v", kind, err)
		}
	}
	// Access tokens, and kinds unknown, are not exchanged: a mistake of
	// the caller, not a refusal of the token.
	for _, kind := range []TokenKind{AccessToken, 0, UserToken + 1} {
		if _, err := f.s.Exchange(bearer(set.UserToken), kind); err == nil || errors.Is(err, ErrInvalidToken) {
			t.Errorf("Exchange(r, %v): %v", kind, err)
		}
	}
	if _, err := f.s.Exchange(bearer(set.UserToken), RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("user token minted an access token: %v", err)
	}
	if _, err := f.s.Exchange(bearer(set.RefreshToken), UserToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("refresh token minted a refresh token: %v", err)
	}
	if _, err := f.s.Exchange(bearer(""), RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("no token: %v", err)
	}
	// Nor are 003 tokens 88Pay session tokens without their session id.
	if w := serve(f.callG.Authenticate()(okHandler), call(set.AccessToken, "")); w.Code != 400 {
		t.Errorf("session scheme without x-session-id: %d", w.Code)
	}
}

// TestRefreshRotation: each exchange spends the refresh token and hands
// out the next; the new access token works.
func TestRefreshRotation(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	access := MustNew(f.s.AccessScheme()).Authenticate()(okHandler)
	refresh := set.RefreshToken
	for i := range 5 {
		f.clock.Advance(10 * time.Second)
		next, err := f.s.Exchange(bearer(refresh), RefreshToken)
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if next.AccessToken == "" || next.RefreshToken == "" || next.RefreshToken == refresh || next.ExpiresIn != 60 || next.UserToken != "" || next.SessionID != set.SessionID {
			t.Fatalf("exchange %d: %+v", i, next)
		}
		if w := serve(access, bearer(next.AccessToken)); w.Code != 200 || w.Header().Get("X-Client") != "demo" {
			t.Fatalf("new access token: %d", w.Code)
		}
		refresh = next.RefreshToken
	}
	b, _ := json.Marshal(TokenSet{AccessToken: "a", RefreshToken: "r", ExpiresIn: 60, SessionID: "s"})
	if string(b) != `{"access_token":"a","refresh_token":"r","expires_in":60}` {
		t.Errorf("exchange JSON %s", b)
	}
}

// TestRefreshReuseRevokesSession: a refresh token presented a second time
// revokes its session: every token of it, the thief's and the user's,
// stops working; other sessions are untouched.
func TestRefreshReuseRevokesSession(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	bystander := login(t, f, "demo")
	access := MustNew(f.s.AccessScheme()).Authenticate()(okHandler)
	userH := MustNew(f.s.UserScheme()).Authenticate()(okHandler)

	stolen := set.RefreshToken
	thief, err := f.s.Exchange(bearer(stolen), RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// The legitimate client presents the same refresh token again.
	_, err = f.s.Exchange(bearer(stolen), RefreshToken)
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrRefreshTokenReused) {
		t.Fatalf("reuse: %v, want ErrInvalidToken and ErrRefreshTokenReused", err)
	}
	if e := NewError(err); e.Status != 401 || e.Code != "invalid_token" {
		t.Errorf("reuse renders as %d %s", e.Status, e.Code)
	}
	for name, code := range map[string]int{
		"thief's access":   serve(access, bearer(thief.AccessToken)).Code,
		"first access":     serve(access, bearer(set.AccessToken)).Code,
		"user call":        serve(userH, userCall(set.AccessToken, set.UserToken)).Code,
		"bystander access": serve(access, bearer(bystander.AccessToken)).Code,
	} {
		want := 401
		if name == "bystander access" {
			want = 200
		}
		if code != want {
			t.Errorf("%s: %d, want %d", name, code, want)
		}
	}
	if _, err := f.s.Exchange(bearer(thief.RefreshToken), RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("thief's refresh token still mints: %v", err)
	}
	if _, err := f.s.Exchange(bearer(set.UserToken), UserToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("user token of the revoked session still mints: %v", err)
	}
	if _, err := f.s.Exchange(bearer(bystander.RefreshToken), RefreshToken); err != nil {
		t.Errorf("bystander: %v", err)
	}
}

// TestExchangeUserToken: Exchange(r, UserToken) mints a new refresh token,
// which replaces the previous one: presenting the replaced one is reuse.
func TestExchangeUserToken(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	got, err := f.s.Exchange(bearer(set.UserToken), UserToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken == "" || got.AccessToken != "" || got.UserToken != "" || got.ExpiresIn != 0 {
		t.Fatalf("%+v", got)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"refresh_token":"`+got.RefreshToken+`"}` {
		t.Errorf("JSON %s", b)
	}
	if _, err := f.s.Exchange(bearer(got.RefreshToken), RefreshToken); err != nil {
		t.Fatalf("new refresh token: %v", err)
	}
	if _, err := f.s.Exchange(bearer(set.RefreshToken), RefreshToken); !errors.Is(err, ErrRefreshTokenReused) {
		t.Errorf("replaced refresh token: %v", err)
	}
}

// TestLoginNeverEvictsAnotherUsersSession: at the capacity a new login
// fails with ErrStoreFull rather than forget another user's session
// (regression: 110,000 logins evicted session #0, logging its user out).
func TestLoginNeverEvictsAnotherUsersSession(t *testing.T) {
	f := newSessFixture(t, WithCapacity(2))
	first := login(t, f, "u1")
	second := login(t, f, "u2")
	if _, err := f.s.Login(context.Background(), &Client{ID: "u3", Env: Sandbox}); !errors.Is(err, ErrStoreFull) {
		t.Errorf("login at the capacity: %v, want ErrStoreFull", err)
	}
	for _, set := range []*TokenSet{first, second} {
		if _, err := f.s.Exchange(bearer(set.RefreshToken), RefreshToken); err != nil {
			t.Errorf("session of another user after a refused login: %v", err)
		}
	}
	// Once a session expires, its place is free.
	f.clock.Advance(f.s.lifetimes[UserToken])
	login(t, f, "u3")
	if n := len(f.s.mem.fams.byID); n != 1 {
		t.Errorf("%d sessions tracked, want 1", n)
	}
}

// TestUserLoginsEvictOnlyTheirOwnSessions: one user logging in again and
// again forgets only their own oldest sessions; another user's session
// still mints tokens, and the store holds at most 16 of the flooder's.
func TestUserLoginsEvictOnlyTheirOwnSessions(t *testing.T) {
	f := newSessFixture(t, WithCapacity(100))
	victim := login(t, f, "victim")
	var mallory []*TokenSet
	for range 500 {
		mallory = append(mallory, login(t, f, "mallory"))
	}
	if n := len(f.s.mem.fams.byID); n != 1+maxUserSessions {
		t.Errorf("%d sessions tracked, want %d", n, 1+maxUserSessions)
	}
	if _, err := f.s.Exchange(bearer(victim.RefreshToken), RefreshToken); err != nil {
		t.Errorf("victim's session after the flood: %v", err)
	}
	if _, err := f.s.Exchange(bearer(mallory[0].RefreshToken), RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("the flooder's oldest session: %v, want forgotten", err)
	}
	if _, err := f.s.Exchange(bearer(mallory[len(mallory)-1].RefreshToken), RefreshToken); err != nil {
		t.Errorf("the flooder's latest session: %v", err)
	}
}

// TestConcurrentRefresh: of many concurrent exchanges of one refresh
// token, exactly one succeeds; the others revoke the session.
func TestConcurrentRefresh(t *testing.T) {
	f := newSessFixture(t)
	set := login(t, f, "demo")
	const n = 8
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.s.Exchange(bearer(set.RefreshToken), RefreshToken); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d exchanges succeeded, want 1", ok.Load())
	}
	if _, err := f.s.Exchange(bearer(set.UserToken), UserToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("session survived the reuse: %v", err)
	}
}

// TestConcurrentRotation verifies and issues while the ring rotates and
// revocations come in (run with -race).
func TestConcurrentRotation(t *testing.T) {
	f := newSessFixture(t)
	scheme := f.s.SessionScheme()
	keys := manyKeys(t, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				set, err := f.s.Issue(&Client{ID: payMerchant, Env: Sandbox})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := scheme.Authenticate(call(set.AccessToken, set.SessionID)); err != nil && !errors.Is(err, ErrInvalidToken) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, k := range keys {
			if err := f.ring.Rotate(k); err != nil {
				t.Error(err)
			}
			f.s.RevokeSession(context.Background(), "sess_"+k.ID())
			if i > 0 {
				f.ring.Remove(keys[i-1].ID())
			}
			serve(f.ring.JWKS(), httptest.NewRequest("GET", "/", nil))
		}
	}()
	wg.Wait()
}

// TestReuseDoesNotCrowdOutRevocations: revocations made by reuse detection
// are held with their sessions, so a user provoking reuse again and again
// can neither keep an operator from revoking (regression: the operator's
// RevokeSession failed with ErrStoreFull and the victim's token kept
// working) nor get a revocation of theirs dropped.
func TestReuseDoesNotCrowdOutRevocations(t *testing.T) {
	f := newSessFixture(t, WithCapacity(50))
	access := MustNew(f.s.AccessScheme()).Authenticate()(okHandler)
	victim := login(t, f, "victim")
	var reused []*TokenSet
	var reusedAt []time.Time
	var refusedLogins int
	for len(reused) < 200 {
		set, err := f.s.Login(context.Background(), &Client{ID: "mallory", Env: Sandbox})
		if errors.Is(err, ErrStoreFull) {
			// All of mallory's places hold revocations in force: only
			// mallory waits.
			refusedLogins++
			if _, err := f.s.Exchange(bearer(victim.UserToken), UserToken); err != nil {
				t.Fatalf("victim while mallory waits: %v", err)
			}
			f.clock.Advance(30 * time.Second)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		f.s.Exchange(bearer(set.RefreshToken), RefreshToken)
		if _, err := f.s.Exchange(bearer(set.RefreshToken), RefreshToken); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reuse %d: %v", len(reused), err)
		}
		reused, reusedAt = append(reused, set), append(reusedAt, f.clock.Now())
		// No revocation of the reuses whose access tokens still live is
		// lost.
		for i, r := range reused {
			if !f.clock.Now().Before(reusedAt[i].Add(f.s.lifetimes[AccessToken])) {
				continue
			}
			if w := serve(access, bearer(r.AccessToken)); w.Code != 401 {
				t.Fatalf("access token of a reused session: %d", w.Code)
			}
		}
	}
	if refusedLogins == 0 {
		t.Error("mallory never held all of their places")
	}
	for i := range 5 {
		if err := f.s.RevokeSession(context.Background(), "sess_op"+strconv.Itoa(i)); err != nil {
			t.Fatalf("operator's revocation %d after %d reuses: %v", i, len(reused), err)
		}
	}
	if err := f.s.RevokeSession(context.Background(), victim.SessionID); !errors.Is(err, ErrStoreFull) {
		t.Errorf("operators' list past its tenth: %v", err)
	}
	if n := len(f.s.mem.fams.byID); n > 1+maxUserSessions {
		t.Errorf("%d sessions tracked, want at most %d", n, 1+maxUserSessions)
	}
}

// TestSessionFamiliesMemory: tracked sessions stay within the documented
// 400 bytes apiece.
func TestSessionFamiliesMemory(t *testing.T) {
	const n = 4000
	f := newSessFixture(t, WithCapacity(n))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n + 100 {
		f.s.Login(context.Background(), &Client{ID: "user-" + strconv.Itoa(i), Env: Sandbox})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := len(f.s.mem.fams.byID); got != n {
		t.Errorf("%d sessions tracked, want %d", got, n)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 400*n {
		t.Errorf("heap grew %d bytes for %d sessions, more than 400 apiece", grown, n)
	} else {
		t.Logf("%d bytes a session", grown/n)
	}
}
