package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// demo is a running gateway and clients to call it.
type demo struct {
	base, secure string // http://127.0.0.1:port and https://...
	client       *http.Client
}

// startDemo runs the gateway on free loopback ports until the test ends.
func startDemo(t *testing.T, cfg config) *demo {
	t.Helper()
	if cfg.addr == "" {
		cfg.addr = "127.0.0.1:0"
	}
	if cfg.tlsAddr == "" {
		cfg.tlsAddr = "127.0.0.1:0"
	}
	if cfg.tokenTTL == 0 {
		cfg.tokenTTL = 60 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, io.Discard, func(p, s net.Addr) { addrs <- [2]net.Addr{p, s} })
	}()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("demo did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not start in 10s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the demo's certificate is self-signed
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &demo{
		base:   "http://" + a[0].String(),
		secure: "https://" + a[1].String(),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
}

// response is what a call answered.
type response struct {
	status int
	header http.Header
	body   string
}

// call sends one request; headers alternate name, value.
func (d *demo) call(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// want fails t unless r has status and a body equal, once decoded, to want.
func (r response) want(t *testing.T, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s\nwant   %s", r.body, want)
	}
}

// field decodes r's body and returns the value at a dotted path.
func (r response) field(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %s", path, r.body)
		}
		v = m[p]
	}
	return v
}

func TestHealthz(t *testing.T) {
	d := startDemo(t, config{})
	if r := d.call(t, "GET", d.base+"/healthz", ""); r.status != 200 {
		t.Errorf("plain: %d", r.status)
	}
	if r := d.call(t, "GET", d.secure+"/healthz", ""); r.status != 200 {
		t.Errorf("TLS: %d", r.status)
	}
}

const (
	mockUnauthorized = `{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}`
	mockForbidden    = `{"success":false,"error":{"code":"FORBIDDEN","message":"Insufficient permissions for this operation"}}`
)

func TestMockPay(t *testing.T) {
	d := startDemo(t, config{})
	create := d.base + "/mockpay/api/v1/payment/create"
	bearer := func(k string) []string {
		return []string{"Authorization", "Bearer " + k, "Content-Type", "application/json"}
	}
	order := `{"order_id":"ORDER-123","amount":100000}`

	d.call(t, "POST", create, order, bearer(mockPayKeyA)...).want(t, 200,
		`{"success":true,"data":{"order_id":"ORDER-123","amount":100000,"status":"pending"}}`)
	d.call(t, "POST", create, order).want(t, 401, mockUnauthorized)
	d.call(t, "POST", create, order, bearer("sandbox_sk_test_unknown")...).want(t, 401, mockUnauthorized)
	d.call(t, "POST", create, order, bearer(mockPayKeyLive)...).want(t, 401, mockUnauthorized)
	d.call(t, "POST", create, order, bearer(mockPayKeyB)...).want(t, 403, mockForbidden)

	// Reads: own payments only.
	get := d.base + "/mockpay/api/v1/payment/ORDER-123"
	d.call(t, "GET", get, "", bearer(mockPayKeyA)...).want(t, 200,
		`{"success":true,"data":{"order_id":"ORDER-123","amount":100000,"status":"pending"}}`)
	d.call(t, "GET", get, "", bearer(mockPayKeyB)...).want(t, 404,
		`{"success":false,"error":{"code":"NOT_FOUND","message":"Payment not found"}}`)
	d.call(t, "GET", get, "").want(t, 401, mockUnauthorized)
	d.call(t, "GET", get, "", bearer(mockPayKeyLive)...).want(t, 401, mockUnauthorized)
	// client-b has payment:read but no payment of its own; client-a's is 404.
	d.call(t, "GET", d.base+"/mockpay/api/v1/payment/NOPE", "", bearer(mockPayKeyA)...).want(t, 404,
		`{"success":false,"error":{"code":"NOT_FOUND","message":"Payment not found"}}`)
}

const midtransDenied = `{"status_code":"401","status_message":"Access denied due to unauthorized transaction, please check client or server key"}`

func TestMidtrans(t *testing.T) {
	d := startDemo(t, config{})
	snap := d.base + "/midtrans/snap/v1/transactions"
	body := `{"transaction_details":{"order_id":"YOUR-ORDERID-123456","gross_amount":10000}}`
	// base64("SB-Mid-server-demo123456:")
	serverAuth := "Basic U0ItTWlkLXNlcnZlci1kZW1vMTIzNDU2Og=="
	json := []string{"Content-Type", "application/json", "Accept", "application/json"}

	r := d.call(t, "POST", snap, body, append([]string{"Authorization", serverAuth}, json...)...)
	if r.status != 201 || r.field(t, "token") == "" || !strings.HasSuffix(r.field(t, "redirect_url").(string), r.field(t, "token").(string)) {
		t.Errorf("snap: %d %s", r.status, r.body)
	}
	d.call(t, "POST", snap, body, json...).want(t, 401, midtransDenied)
	auth := []string{"Authorization", serverAuth}
	for name, tc := range map[string]struct {
		headers []string
		status  int
		body    string
	}{
		"no content type":   {[]string{"Accept", "application/json"}, 415, `{"status_code":"415","status_message":"Content-Type must be application/json"}`},
		"text content type": {[]string{"Content-Type", "text/plain", "Accept", "application/json"}, 415, `{"status_code":"415","status_message":"Content-Type must be application/json"}`},
		"xml accept":        {[]string{"Content-Type", "application/json", "Accept", "application/xml"}, 406, `{"status_code":"406","status_message":"Accept must allow application/json"}`},
		"json refused":      {[]string{"Content-Type", "application/json", "Accept", "application/json;q=0, text/html"}, 406, `{"status_code":"406","status_message":"Accept must allow application/json"}`},
	} {
		t.Run(name, func(t *testing.T) {
			d.call(t, "POST", snap, body, append(auth, tc.headers...)...).want(t, tc.status, tc.body)
		})
	}
	for _, accept := range []string{"", "*/*", "application/*", "application/json; charset=utf-8", "text/html;q=0.9, application/json;q=0.1"} {
		h := append([]string{"Authorization", serverAuth, "Content-Type", "application/json; charset=utf-8"}, "Accept", accept)
		if accept == "" {
			h = h[:4]
		}
		if r := d.call(t, "POST", snap, body, h...); r.status != 201 {
			t.Errorf("Accept %q: %d %s", accept, r.status, r.body)
		}
	}
	// base64("SB-Mid-client-demo123456:"): a client key here is 401.
	d.call(t, "POST", snap, body, append([]string{"Authorization", "Basic U0ItTWlkLWNsaWVudC1kZW1vMTIzNDU2Og=="}, json...)...).want(t, 401, midtransDenied)
	// base64("SB-Mid-server-demo123456:pw"): a password is 401.
	d.call(t, "POST", snap, body, append([]string{"Authorization", "Basic U0ItTWlkLXNlcnZlci1kZW1vMTIzNDU2OnB3"}, json...)...).want(t, 401, midtransDenied)

	token := d.base + "/midtrans/v2/token?card_cvv=123&gross_amount=20000&currency=IDR&card_number=4811111111111114&card_exp_month=02&card_exp_year=2025"
	r = d.call(t, "GET", token+"&client_key="+midtransClientKey, "")
	if r.status != 200 || r.field(t, "status_code") != "200" || !strings.HasPrefix(r.field(t, "token_id").(string), "481111-1114-") {
		t.Errorf("card token: %d %s", r.status, r.body)
	}
	d.call(t, "GET", token, "").want(t, 401, midtransDenied)
	d.call(t, "GET", token+"&client_key="+midtransServerKey, "").want(t, 401, midtransDenied)
	if r := d.call(t, "GET", token+"&client_key="+midtransClientKey, "", "Authorization", serverAuth); r.status != 200 {
		t.Errorf("client key with a server key header: %d", r.status)
	}
}

// TestConcurrentRequests: 400 concurrent valid requests are all answered.
func TestConcurrentRequests(t *testing.T) {
	d := startDemo(t, config{})
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", d.base+"/mockpay/api/v1/payment/NOPE", nil)
			req.Header.Set("Authorization", "Bearer "+mockPayKeyA)
			resp, err := d.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
