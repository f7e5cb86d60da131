package apiguard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

func pemOf(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseSigningKey(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	sec1, err1 := x509.MarshalECPrivateKey(priv)
	pkcs8, err2 := x509.MarshalPKCS8PrivateKey(priv)
	pkix, err3 := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	p384der, err4 := x509.MarshalPKCS8PrivateKey(p384)
	rsader, err5 := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsapub, err6 := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	p384sec1, err7 := x509.MarshalECPrivateKey(p384)

	good := map[string]struct {
		data    []byte
		canSign bool
	}{
		"SEC 1":  {pemOf(t, "EC PRIVATE KEY", sec1, err1), true},
		"PKCS 8": {pemOf(t, "PRIVATE KEY", pkcs8, err2), true},
		"PKIX":   {pemOf(t, "PUBLIC KEY", pkix, err3), false},
	}
	var ids []string
	for name, tc := range good {
		t.Run(name, func(t *testing.T) {
			k, err := ParseSigningKey(tc.data, "")
			if err != nil {
				t.Fatal(err)
			}
			if k.canSign() != tc.canSign || !k.pub.Equal(&priv.PublicKey) {
				t.Errorf("key %+v", k)
			}
			ids = append(ids, k.ID())
		})
	}
	// The default id is the RFC 7638 thumbprint: alike for every form of
	// the key, and 43 characters of base64url.
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] || len(ids[0]) != 43 {
		t.Errorf("thumbprint ids %q", ids)
	}
	if k, err := ParseSigningKey(good["PKIX"].data, "2026-11"); err != nil || k.ID() != "2026-11" {
		t.Errorf("named key: %v %v", k, err)
	}

	bad := map[string][]byte{
		"empty":              nil,
		"not PEM":            []byte("-----BEGIN NOTHING"),
		"certificate":        pemOf(t, "CERTIFICATE", []byte{1, 2, 3}, nil),
		"garbage SEC 1":      pemOf(t, "EC PRIVATE KEY", []byte{1, 2, 3}, nil),
		"garbage PKCS 8":     pemOf(t, "PRIVATE KEY", []byte{1, 2, 3}, nil),
		"garbage PKIX":       pemOf(t, "PUBLIC KEY", []byte{1, 2, 3}, nil),
		"P-384 PKCS 8":       pemOf(t, "PRIVATE KEY", p384der, err4),
		"P-384 SEC 1":        pemOf(t, "EC PRIVATE KEY", p384sec1, err7),
		"RSA private":        pemOf(t, "PRIVATE KEY", rsader, err5),
		"RSA public":         pemOf(t, "PUBLIC KEY", rsapub, err6),
		"RSA PRIVATE KEY":    pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil),
		"id with a space":    nil, // below
		"id of 129 bytes":    nil,
		"id with a non-char": nil,
	}
	for name, data := range bad {
		id := ""
		switch name {
		case "id with a space":
			data, id = good["PKIX"].data, "a b"
		case "id of 129 bytes":
			data, id = good["PKIX"].data, fmt.Sprintf("%0129d", 0)
		case "id with a non-char":
			data, id = good["PKIX"].data, "k\x7f"
		}
		if _, err := ParseSigningKey(data, id); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSigningKeyPEMRoundTrip(t *testing.T) {
	k, err := GenerateSigningKey("")
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := k.PrivatePEM()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := k.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseSigningKey(privPEM, "")
	if err != nil || k2.ID() != k.ID() || !k2.canSign() {
		t.Fatalf("private round trip: %v", err)
	}
	k3, err := ParseSigningKey(pubPEM, "")
	if err != nil || k3.ID() != k.ID() || k3.canSign() {
		t.Fatalf("public round trip: %v", err)
	}
	if _, err := k3.PrivatePEM(); err == nil {
		t.Error("PrivatePEM of a public key")
	}
	// A token signed with the reloaded key verifies with the public one.
	signer, _ := NewKeyRing(k2)
	verifier, _ := NewKeyRing(nil, k3)
	clock := newTestClock()
	s1, _ := NewSessions("test-api", signer, WithClock(clock.Now))
	s2, _ := NewSessions("test-api", verifier, WithClock(clock.Now))
	set, err := s1.Issue(&Client{ID: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s2.SessionScheme().Authenticate(call(set.AccessToken, set.SessionID)); err != nil || c.ID != "m" {
		t.Errorf("verify with the public key: %v", err)
	}
}

func TestKeyRing(t *testing.T) {
	k1, _ := GenerateSigningKey("k1")
	k2, _ := GenerateSigningKey("k2")
	k1dup, _ := GenerateSigningKey("k1")
	pubPEM, _ := k2.PublicPEM()
	k2pub, _ := ParseSigningKey(pubPEM, "k2")

	for name, f := range map[string]func() (*KeyRing, error){
		"no keys":                  func() (*KeyRing, error) { return NewKeyRing(nil) },
		"public signing key":       func() (*KeyRing, error) { return NewKeyRing(k2pub) },
		"duplicate id":             func() (*KeyRing, error) { return NewKeyRing(k1, k1dup) },
		"nil other":                func() (*KeyRing, error) { return NewKeyRing(k1, nil) },
		"more than maxRingKeys":    func() (*KeyRing, error) { return NewKeyRing(k1, manyKeys(t, maxRingKeys)...) },
		"verify-only, duplicate":   func() (*KeyRing, error) { return NewKeyRing(nil, k2, k2pub) },
		"verify-only, 17 keys too": func() (*KeyRing, error) { return NewKeyRing(nil, manyKeys(t, maxRingKeys+1)...) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	ring, err := NewKeyRing(k1)
	if err != nil {
		t.Fatal(err)
	}
	if ring.SigningKeyID() != "k1" {
		t.Errorf("signing key %q", ring.SigningKeyID())
	}
	if err := ring.Add(k2pub); err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(k2pub); err == nil {
		t.Error("Rotate to a public key")
	}
	if err := ring.Rotate(k2); err == nil {
		t.Error("Rotate to a key whose id another key of the ring has")
	}
	if !ring.Remove("k2") || ring.Remove("k2") {
		t.Error("Remove k2")
	}
	if err := ring.Rotate(k2); err != nil || ring.SigningKeyID() != "k2" {
		t.Fatalf("Rotate: %v", err)
	}
	if ring.Remove("k2") {
		t.Error("removed the signing key")
	}
	if err := ring.Add(k1dup); err == nil {
		t.Error("Add of a taken id")
	}
	if err := ring.Rotate(k1); err != nil || ring.SigningKeyID() != "k1" {
		t.Errorf("Rotate back to a key in the ring: %v", err)
	}
	for _, k := range manyKeys(t, maxRingKeys-2) {
		if err := ring.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	extra, _ := GenerateSigningKey("extra")
	if err := ring.Add(extra); err == nil {
		t.Error("Add past 16 keys")
	}
	if err := ring.Rotate(extra); err == nil {
		t.Error("Rotate past 16 keys")
	}
}

func manyKeys(t *testing.T, n int) []*SigningKey {
	t.Helper()
	out := make([]*SigningKey, n)
	for i := range out {
		k, err := GenerateSigningKey(fmt.Sprintf("many-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

func TestJWKS(t *testing.T) {
	k1, _ := GenerateSigningKey("k1")
	k2, _ := GenerateSigningKey("")
	ring, _ := NewKeyRing(k1, k2)
	jwks := func() (map[string]*ecdsa.PublicKey, *httptest.ResponseRecorder) {
		w := serve(ring.JWKS(), httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
			t.Fatal(err)
		}
		out := map[string]*ecdsa.PublicKey{}
		for _, k := range set.Keys {
			if k["kty"] != "EC" || k["crv"] != "P-256" || k["use"] != "sig" || k["alg"] != "ES256" || len(k) != 7 {
				t.Errorf("JWK %v", k)
			}
			x, _ := base64.RawURLEncoding.DecodeString(k["x"])
			y, _ := base64.RawURLEncoding.DecodeString(k["y"])
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				t.Fatalf("JWK %v: %v", k, err)
			}
			out[k["kid"]] = pub
		}
		return out, w
	}
	keys, w := jwks()
	if w.Header().Get("Content-Type") != "application/jwk-set+json" || w.Header().Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("headers %v", w.Header())
	}
	if len(keys) != 2 || !keys["k1"].Equal(k1.pub) || !keys[k2.ID()].Equal(k2.pub) {
		t.Errorf("JWKS keys %v", keys)
	}
	// The set follows the ring, and never holds a private member.
	ring.Remove(k2.ID())
	if keys, w := jwks(); len(keys) != 1 || keys["k1"] == nil {
		t.Errorf("after Remove: %s", w.Body)
	} else if b := w.Body.String(); strings.Contains(b, `"d"`) {
		t.Errorf("private key published: %s", b)
	}
}
