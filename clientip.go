package apiguard

import (
	"net/http"
	"net/netip"
)

// ipResolver tells the client IP of a request.
type ipResolver struct{}

var defaultIPResolver = ipResolver{}

// ClientIP returns the IP of the client that sent r: the peer address of
// r.RemoteAddr. It reports false when the address does not parse, and IP
// checks then refuse the request.
func (g *Guard) ClientIP(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}
