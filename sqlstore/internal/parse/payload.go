package parse

import (
	"encoding/json"
	"errors"
	"strings"
)

// Payload is a notification: the change's number, key id and client id.
type Payload struct {
	Seq      int64  `json:"seq"`
	KeyID    string `json:"key_id"`
	ClientID string `json:"client_id"`
}

// FormatPayload writes a change as a notification's payload:
// {"seq":12,"key_id":"key_...","client_id":"..."}.
func FormatPayload(p Payload) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// ParsePayload reads a notification's payload, which anyone who can
// connect to the database may send: it must be one JSON object with a
// positive seq and valid key and client ids, and nothing else.
func ParsePayload(s string) (Payload, error) {
	if len(s) > 1024 {
		return Payload{}, errors.New("notification payload too long")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return Payload{}, errors.New("malformed notification payload")
	}
	if strings.TrimSpace(s[dec.InputOffset():]) != "" {
		return Payload{}, errors.New("malformed notification payload: trailing data")
	}
	if p.Seq <= 0 || ID("key id", p.KeyID) != nil || ID("client id", p.ClientID) != nil {
		return Payload{}, errors.New("notification payload lacks a sequence number, key id or client id")
	}
	return p, nil
}
