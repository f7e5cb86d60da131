package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds command lines (arguments separated by NUL) to the
// command's parser: it never panics, refuses with a usage error of one
// line, and what it accepts is a known command with valid ranges.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"keys\x00issue\x00--client\x00m\x00--env\x00sandbox\x00--ip\x00203.0.113.7\x00--scope\x00a,b",
		"keys\x00rotate\x00--overlap\x0024h\x00key_1", "ips\x00add\x00key_1\x00203.0.113.7/24",
		"ips\x00remove\x00key_1\x00::1\x00--json", "--db\x00sqlite:x.db\x00keys\x00list\x00m", "keys\x00--help",
		"keys\x00issue\x00--not-after\x002026-01-02\x00--client\x00c\x00--prefix\x00SB-", "--\x00keys",
	} {
		f.Add(s)
	}
	getenv := func(string) string { return "" }
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := parse(strings.Split(s, "\x00"), getenv)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || strings.Contains(oneLine(err.Error()), "\n") {
				t.Fatalf("parse(%q): %v", s, err)
			}
			return
		}
		if inv.help != "" {
			return
		}
		switch inv.group + " " + inv.verb {
		case "keys issue":
			if inv.client == "" || inv.prefix == "" {
				t.Fatalf("parse(%q) accepted %+v", s, inv)
			}
		case "keys rotate", "keys revoke", "keys list", "ips list":
		case "ips add", "ips remove":
			if len(inv.ranges) == 0 {
				t.Fatalf("parse(%q): no ranges", s)
			}
		default:
			t.Fatalf("parse(%q) accepted %q %q", s, inv.group, inv.verb)
		}
		for _, p := range append(inv.ranges, inv.ips...) {
			if p != p.Masked() || !p.IsValid() {
				t.Fatalf("parse(%q) accepted range %v", s, p)
			}
		}
	})
}
