// Package apiguard is net/http middleware that authenticates API callers the
// way payment gateways and reseller APIs do, and refuses the others with the
// exact error bodies their documentation promises.
//
// A Guard holds what the wrappers of one API share: the Scheme that tells
// who is calling (Bearer server keys, Basic with a server key, publishable
// client keys, hash signatures, session tokens), the Dialect that renders
// rejections (MockPay, Reseller, Pay88, Midtrans, or RFC 9457 problem+json,
// the default), the clock, the environment (sandbox or live), client-IP
// resolution, an observer of its decisions and a logger. Wrappers made from a Guard have the standard
// shape func(http.Handler) http.Handler:
//
//	g := apiguard.MustNew(apiguard.Bearer(keys), apiguard.WithDialect(apiguard.MockPay()))
//	mux.Handle("POST /payment/create", apiguard.Chain(g.Authenticate(), g.RequireScope("payment:create"))(create))
//
// Wrappers stack in any order. The first apiguard wrapper to run puts a
// per-request state in the context; the first that needs the caller's
// identity resolves it through its Guard's Scheme, once, and the others and
// the handler share the result (ClientFrom). A wrapper that needs an
// identity fails closed with 401 where its Guard cannot establish one. When
// several checks would fail, the body is that of the first one that runs.
//
// Every rejection is an *Error (status, stable code, message) whose reason
// matches one of the Err* sentinels with errors.Is. Error bodies never
// contain a secret or an internal error's text; secrets are compared in
// constant time; key stores keep digests, not keys; in-memory structures are
// bounded.
package apiguard
