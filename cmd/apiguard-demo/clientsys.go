package main

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/apiguard/apiguard"
)

// The client-system API: every call carries the client system's
// public x-app-key and a unique x-request-id; x-language picks the language
// of messages (id by default, en); users log in for a user token, an access
// token and a refresh token.
const (
	clientAppKey   = "demo-app-key"
	clientUser     = "demo"
	clientPassword = "demo-password"
)

var clientAPI = api{
	mount: mountClient,
	title: "Client system under /client: x-app-key, unique x-request-id, x-language, problem+json",
	credentials: []string{
		clientAppKey + "  app key",
		clientUser + " / " + clientPassword + "  user and password",
	},
	curl: func(base, _ string) string {
		return `curl -s -X POST ` + base + `/client/auth/login -H "x-app-key: ` + clientAppKey +
			`" -H "x-request-id: req-$(date +%s%N)" -H "Content-Type: application/json" -d '{"username":"demo","password":"demo-password"}'`
	},
}

const codeBadLogin = "invalid_credentials"

func mountClient(mux *http.ServeMux, cfg config) error {
	keys, err := apiguard.NewMemoryKeyStore()
	if err != nil {
		return err
	}
	if err := keys.Add(apiguard.KeySpec{Key: clientAppKey, Client: apiguard.Client{ID: "demo-app", KeyID: "app_demo", Publishable: true}}); err != nil {
		return err
	}
	sessions, _, err := newSessions(cfg, "clientsys.sessions")
	if err != nil {
		return err
	}
	if cfg.fleet == nil { // the sessions Login tracks, in memory
		if err := cfg.watch("clientsys.sessions", sessions); err != nil {
			return err
		}
	}
	dialect := apiguard.Problem().WithMessage(codeBadLogin, apiguard.Message{ID: "Nama pengguna atau kata sandi salah", EN: "Invalid username or password"})
	dialect.DefaultLanguage = "id" // the client-system API answers in Indonesian unless x-language: en
	opts := append(cfg.common(), apiguard.WithDialect(dialect))
	app, err := apiguard.New(apiguard.AppKey(keys), opts...)
	if err != nil {
		return err
	}
	user, err := apiguard.New(sessions.UserScheme(), opts...)
	if err != nil {
		return err
	}
	replay, err := cfg.replayStore("clientsys.request_ids")
	if err != nil {
		return err
	}
	// Every route: 120 requests a minute per IP (so that no one address
	// fills the shared store of request ids or tries passwords at will),
	// the app key, then a fresh request id (kept per app).
	perIPLimiter, err := cfg.limiter("clientsys.per_ip", apiguard.PerMinute(120))
	if err != nil {
		return err
	}
	perIP := app.RateLimit(perIPLimiter, apiguard.ByIP())
	general := apiguard.Chain(perIP, app.Authenticate(), app.RequestID(replay, 0))

	login := func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := decodeJSON(r, &body); err != nil || body.Username == "" || body.Password == "" {
			app.Deny(w, r, apiguard.ErrInvalidBody)
			return
		}
		userOK := subtle.ConstantTimeCompare([]byte(body.Username), []byte(clientUser))
		passOK := subtle.ConstantTimeCompare([]byte(body.Password), []byte(clientPassword))
		if userOK&passOK != 1 {
			app.Deny(w, r, &apiguard.Error{Status: http.StatusUnauthorized, Code: codeBadLogin})
			return
		}
		set, err := sessions.Login(r.Context(), &apiguard.Client{ID: clientUser, Role: "user", Scopes: []string{"profile:read"}})
		if errors.Is(err, apiguard.ErrStoreFull) {
			err = apiguard.ErrUnavailable // no room for the session: 503
		}
		if err != nil {
			app.Deny(w, r, err)
			return
		}
		writeJSON(w, 200, set)
	}
	exchange := func(kind apiguard.TokenKind) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			set, err := sessions.Exchange(r, kind)
			switch {
			case errors.Is(err, apiguard.ErrInvalidToken):
				app.Deny(w, r, apiguard.ErrInvalidToken)
			case err != nil:
				app.Deny(w, r, err)
			default:
				writeJSON(w, 200, set)
			}
		}
	}
	me := func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		writeJSON(w, 200, map[string]any{"username": c.ID, "role": c.Role, "scopes": c.Scopes})
	}

	mux.Handle("POST /client/auth/login", general(http.HandlerFunc(login)))
	mux.Handle("GET /client/me", apiguard.Chain(general, user.Authenticate())(http.HandlerFunc(me)))
	mux.Handle("POST /client/auth/access-token", general(exchange(apiguard.RefreshToken)))
	mux.Handle("POST /client/auth/refresh-token", general(exchange(apiguard.UserToken)))
	return nil
}
