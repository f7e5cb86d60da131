package main

import "testing"

// TestClientRequestIDsPerCaller: the client-system API's app key is public,
// so its request ids are kept per caller's address: a caller who sends
// another's next id first does not make that caller's request fail with
// 409, and each caller's own replay still does.
func TestClientRequestIDsPerCaller(t *testing.T) {
	d := startDemo(t, config{})
	login := d.base + "/client/auth/login"
	creds := `{"username":"demo","password":"demo-password"}`
	from := func(ip string) []string {
		return []string{"x-app-key", clientAppKey, "Content-Type", "application/json", "x-request-id", "order-42", "X-Forwarded-For", ip}
	}
	for i, step := range []struct {
		ip     string
		status int
	}{
		{"198.51.100.7", 200}, // the attacker, first
		{"203.0.113.9", 200},  // the victim's own request goes through
		{"203.0.113.9", 409},  // the victim's replay
		{"198.51.100.7", 409}, // the attacker's replay
	} {
		if r := d.call(t, "POST", login, creds, from(step.ip)...); r.status != step.status {
			t.Errorf("step %d from %s: %d, want %d (%s)", i, step.ip, r.status, step.status, r.body)
		}
	}
}
