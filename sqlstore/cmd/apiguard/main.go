// Command apiguard manages the API keys of an apiguard key store kept in
// PostgreSQL or SQLite by package sqlstore: it issues, rotates, revokes and
// lists keys, and registers the IP addresses a key is accepted from. Run
// "apiguard --help" for its manual.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore"
	sqlparse "github.com/apiguard/apiguard/sqlstore/internal/parse"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // refused, or the database failed
	exitUsage  = 2 // the command line is wrong
)

// timeout bounds a whole command.
const timeout = 30 * time.Second

// run runs the command with args (without the program name), writes its
// output to stdout and one line per error to stderr, and returns the exit
// code.
func run(args []string, stdout, stderr io.Writer) int {
	inv, err := parse(args, os.Getenv)
	if err != nil {
		// Usage errors begin with the command's name.
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return exitUsage
	}
	if inv.help != "" {
		io.WriteString(stdout, inv.help)
		return exitOK
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := inv.exec(ctx, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, oneLine("apiguard: "+message(err, inv.db)))
		return exitFailed
	}
	return exitOK
}

// invocation is a parsed command line.
type invocation struct {
	help        string // when set, print it and stop
	group, verb string
	db, actor   string
	json        bool

	// keys issue
	client, prefix, env, kind, role, keyID string
	scopes                                 []string
	ips                                    []netip.Prefix
	notAfter                               time.Time
	validFor                               time.Duration
	keepSecret                             bool
	// keys rotate
	overlap time.Duration
	// the argument (key id or client id) and, for ips add|remove, ranges
	arg    string
	ranges []netip.Prefix
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// parse reads a command line. Global options may come anywhere; a
// command's options may come before or after its arguments.
func parse(args []string, getenv func(string) string) (*invocation, error) {
	inv := &invocation{db: getenv("APIGUARD_DB"), actor: getenv("USER"), overlap: sqlstore.DefaultOverlap}
	words, help, err := inv.parseFlags(args, nil, "apiguard")
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		if help {
			inv.help = helpTop
			return inv, nil
		}
		return nil, usagef("apiguard: say what to do: keys issue|rotate|revoke|list or ips add|remove|list (see apiguard --help)")
	}
	inv.group = words[0]
	var verbs map[string]string
	switch inv.group {
	case "keys":
		verbs = map[string]string{"issue": helpIssue, "rotate": helpRotate, "revoke": helpRevoke, "list": helpList}
	case "ips":
		verbs = map[string]string{"add": helpIPsAdd, "remove": helpIPsRemove, "list": helpIPsList}
	case "help":
		inv.help = helpTop
		return inv, nil
	default:
		return nil, usagef("apiguard: unknown command %q (see apiguard --help)", clip(inv.group))
	}
	groupHelp := helpKeys
	if inv.group == "ips" {
		groupHelp = helpIPs
	}
	// Global options may stand between the group and the command.
	rest, help1, err := inv.parseFlags(words[1:], nil, "apiguard "+inv.group)
	if err != nil {
		return nil, err
	}
	help = help || help1
	words = append(words[:1], rest...)
	if len(words) == 1 {
		if help {
			inv.help = groupHelp
			return inv, nil
		}
		return nil, usagef("apiguard %s: say which command (see apiguard %s --help)", inv.group, inv.group)
	}
	inv.verb = words[1]
	vh, ok := verbs[inv.verb]
	if !ok {
		return nil, usagef("apiguard %s: unknown command %q (see apiguard %s --help)", inv.group, clip(inv.verb), inv.group)
	}
	name := "apiguard " + inv.group + " " + inv.verb
	rest, help2, err := inv.parseFlags(words[2:], inv.verbFlags, name)
	if err != nil {
		return nil, err
	}
	if help || help2 {
		inv.help = vh
		return inv, nil
	}
	if err := inv.check(rest, name); err != nil {
		return nil, err
	}
	return inv, nil
}

// parseFlags parses the global options and those that more adds, wherever
// they stand among args, and returns the other words.
func (inv *invocation) parseFlags(args []string, more func(*flag.FlagSet), name string) (words []string, help bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&inv.db, "db", inv.db, "")
	fs.StringVar(&inv.actor, "actor", inv.actor, "")
	fs.BoolVar(&inv.json, "json", inv.json, "")
	fs.BoolVar(&help, "h", false, "")
	fs.BoolVar(&help, "help", false, "")
	if more != nil {
		more(fs)
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, nil
			}
			msg := err.Error()
			if opt, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown option " + opt
			}
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			return nil, false, usagef("%s: %s (see %s --help)", name, msg, name)
		}
		args = fs.Args()
		if len(args) == 0 {
			return words, help, nil
		}
		if more == nil {
			// Above a command, the first word ends the options: the rest
			// belongs to the command.
			return args, help, nil
		}
		if args[0] == "--" {
			return append(words, args[1:]...), help, nil
		}
		words = append(words, args[0])
		args = args[1:]
	}
}

// verbFlags adds the options of the command.
func (inv *invocation) verbFlags(fs *flag.FlagSet) {
	switch inv.group + " " + inv.verb {
	case "keys issue":
		fs.StringVar(&inv.client, "client", "", "")
		fs.StringVar(&inv.env, "env", "", "")
		fs.StringVar(&inv.prefix, "prefix", "", "")
		fs.StringVar(&inv.kind, "kind", "server", "")
		fs.StringVar(&inv.role, "role", "", "")
		fs.StringVar(&inv.keyID, "key-id", "", "")
		fs.BoolVar(&inv.keepSecret, "keep-secret", false, "")
		fs.Func("scope", "", func(s string) error {
			for sc := range strings.SplitSeq(s, ",") {
				if sc = strings.TrimSpace(sc); sc != "" {
					inv.scopes = append(inv.scopes, sc)
				}
			}
			return nil
		})
		fs.Func("ip", "", func(s string) error {
			p, err := sqlstore.ParsePrefix(s)
			if err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), "sqlstore: invalid argument: "))
			}
			inv.ips = append(inv.ips, p)
			return nil
		})
		fs.Func("not-after", "", func(s string) (err error) {
			inv.notAfter, err = parseTime(s)
			return err
		})
		fs.DurationVar(&inv.validFor, "valid-for", 0, "")
	case "keys rotate":
		fs.DurationVar(&inv.overlap, "overlap", sqlstore.DefaultOverlap, "")
	case "keys list":
		fs.StringVar(&inv.client, "client", "", "")
	}
}

// check checks the arguments of the command.
func (inv *invocation) check(args []string, name string) error {
	want := func(n int, what string) error {
		if len(args) != n {
			return usagef("%s takes %s (see %s --help)", name, what, name)
		}
		return nil
	}
	switch inv.group + " " + inv.verb {
	case "keys issue":
		if err := want(0, "no argument"); err != nil {
			return err
		}
		if inv.client == "" {
			return usagef("%s: --client is required", name)
		}
		switch inv.kind {
		case "server", "publishable":
		default:
			return usagef("%s: --kind is server or publishable, not %q", name, clip(inv.kind))
		}
		switch inv.env {
		case "", "sandbox", "live":
		default:
			return usagef("%s: --env is sandbox or live, not %q", name, clip(inv.env))
		}
		if inv.env == "" && inv.prefix == "" {
			return usagef("%s: say --env sandbox|live or --prefix, so that the key's environment is plain", name)
		}
		if inv.prefix == "" {
			inv.prefix = map[string]string{"server": "sk_", "publishable": "pk_"}[inv.kind] +
				map[string]string{"sandbox": "test_", "live": "live_"}[inv.env]
		}
		if inv.validFor < 0 {
			return usagef("%s: --valid-for must not be negative", name)
		}
		if inv.validFor > 0 && !inv.notAfter.IsZero() {
			return usagef("%s: give --not-after or --valid-for, not both", name)
		}
	case "keys rotate":
		if inv.overlap < 0 {
			return usagef("%s: --overlap must not be negative", name)
		}
		if err := want(1, "one key id"); err != nil {
			return err
		}
		inv.arg = args[0]
	case "keys revoke", "ips list":
		if err := want(1, "one key id"); err != nil {
			return err
		}
		inv.arg = args[0]
	case "keys list":
		switch {
		case len(args) == 1 && inv.client == "":
			inv.arg = args[0]
		case len(args) == 0 && inv.client != "":
			inv.arg = inv.client
		default:
			return usagef("%s takes one client id (see %s --help)", name, name)
		}
	case "ips add", "ips remove":
		if len(args) < 2 {
			return usagef("%s takes a key id and one or more address ranges (see %s --help)", name, name)
		}
		inv.arg = args[0]
		for _, a := range args[1:] {
			p, err := sqlstore.ParsePrefix(a)
			if err != nil {
				return usagef("%s: %s", name, strings.TrimPrefix(err.Error(), "sqlstore: invalid argument: "))
			}
			inv.ranges = append(inv.ranges, p)
		}
	}
	return nil
}

// parseTime reads --not-after: RFC 3339, or a date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time such as 2026-12-31 or 2026-12-31T23:59:59Z", clip(s))
}

// changes reports whether the command changes the database.
func (inv *invocation) changes() bool {
	return inv.verb != "list"
}

// exec runs a parsed command against the database.
func (inv *invocation) exec(ctx context.Context, stdout, stderr io.Writer) error {
	if inv.db == "" {
		return errors.New("no database: give --db URL or set APIGUARD_DB")
	}
	if inv.changes() {
		if inv.actor == "" {
			if u, err := user.Current(); err == nil {
				inv.actor = u.Username
			}
		}
		if inv.actor == "" {
			return errors.New("no actor: give --actor NAME or set USER")
		}
	}
	// Only issue may create an SQLite file: anything else on a missing
	// file is a mistake, and must leave no file behind.
	if path, ok := sqlitePath(inv.db); ok && !(inv.group == "keys" && inv.verb == "issue") {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no database at %s (keys issue creates one)", path)
		}
	}
	st, err := sqlstore.Open(ctx, inv.db)
	if err != nil {
		return &dbError{err}
	}
	defer st.Close()
	out := &printer{w: stdout, json: inv.json, now: time.Now()}
	switch inv.group + " " + inv.verb {
	case "keys issue":
		notAfter := inv.notAfter
		if inv.validFor > 0 {
			notAfter = time.Now().Add(inv.validFor)
		}
		env := map[string]apiguard.Environment{"sandbox": apiguard.Sandbox, "live": apiguard.Live}[inv.env]
		key, info, err := st.Issue(ctx, inv.actor, sqlstore.NewKey{
			Prefix: inv.prefix, NotAfter: notAfter, KeepSecret: inv.keepSecret,
			Client: apiguard.Client{ID: inv.client, KeyID: inv.keyID, Scopes: inv.scopes, Role: inv.role, Env: env, IPs: inv.ips, Publishable: inv.kind == "publishable"},
		})
		if err != nil {
			return err
		}
		if !inv.json {
			fmt.Fprintln(stderr, "apiguard: the key is shown this once: hand it to the client now.")
		}
		return out.issued(key, info, nil)
	case "keys rotate":
		key, info, err := st.Rotate(ctx, inv.actor, inv.arg, inv.overlap)
		if err != nil {
			return err
		}
		old, err := st.Key(ctx, inv.arg)
		if err != nil {
			return err
		}
		if !inv.json {
			fmt.Fprintf(stderr, "apiguard: %s works until %s; the new key is shown this once.\n",
				old.Client.KeyID, old.NotAfter.UTC().Format(time.RFC3339))
		}
		return out.issued(key, info, &old)
	case "keys revoke":
		if err := st.Revoke(ctx, inv.actor, inv.arg); err != nil {
			return err
		}
		info, err := st.Key(ctx, inv.arg)
		if err != nil {
			return err
		}
		return out.keys([]sqlstore.KeyInfo{info}, false)
	case "keys list":
		list, err := st.List(ctx, inv.arg)
		if err != nil {
			return err
		}
		return out.keys(list, true)
	case "ips add", "ips remove", "ips list":
		var info sqlstore.KeyInfo
		var err error
		switch inv.verb {
		case "add":
			info, err = st.AddIPs(ctx, inv.actor, inv.arg, inv.ranges...)
		case "remove":
			info, err = st.RemoveIPs(ctx, inv.actor, inv.arg, inv.ranges...)
		default:
			info, err = st.Key(ctx, inv.arg)
		}
		if err != nil {
			return err
		}
		return out.ips(info)
	}
	return fmt.Errorf("unknown command %s %s", inv.group, inv.verb)
}

// sqlitePath returns the file of an SQLite database URL.
func sqlitePath(db string) (string, bool) {
	lower := strings.ToLower(db)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") || strings.Contains(db, "://") {
		return "", false
	}
	p := db
	if strings.HasPrefix(lower, "sqlite:") {
		p = p[len("sqlite:"):]
	} else if strings.HasPrefix(lower, "file:") {
		p = p[len("file:"):]
	}
	p, _, _ = strings.Cut(p, "?")
	return p, p != ""
}

// dbError is a failure to open the database.
type dbError struct{ err error }

func (e *dbError) Error() string { return e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

// message words an error for the operator, in one line and without the
// database's password.
func message(err error, db string) string {
	msg := err.Error()
	var de *dbError
	if errors.As(err, &de) {
		msg = "cannot use the database " + sqlstore.RedactURL(db) + ": " + msg
	}
	if pw := sqlparse.Password(db); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	msg = strings.ReplaceAll(msg, "sqlstore: invalid argument: ", "")
	return strings.ReplaceAll(msg, "sqlstore: ", "")
}

// oneLine keeps an error on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// printer writes results as tables or JSON.
type printer struct {
	w    io.Writer
	json bool
	now  time.Time
}

// keyJSON is a key as --json prints it.
type keyJSON struct {
	KeyID      string     `json:"key_id"`
	ClientID   string     `json:"client_id"`
	Key        string     `json:"key,omitempty"`
	Prefix     string     `json:"prefix"`
	Kind       string     `json:"kind"`
	Env        string     `json:"env"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	IPs        []string   `json:"ips"`
	KeepSecret bool       `json:"keep_secret"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	NotAfter   *time.Time `json:"not_after,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	ReplacedBy string     `json:"replaced_by,omitempty"`
	Replaces   *keyJSON   `json:"replaces,omitempty"`
}

func (p *printer) toJSON(k sqlstore.KeyInfo) keyJSON {
	j := keyJSON{
		KeyID: k.Client.KeyID, ClientID: k.Client.ID, Prefix: k.Prefix, Kind: kindName(k.Client.Publishable),
		Env: k.Client.Env.String(), Role: k.Client.Role, Scopes: k.Client.Scopes, IPs: prefixes(k.Client.IPs),
		KeepSecret: k.KeepSecret, Status: k.Status(p.now), CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy,
		ReplacedBy: k.ReplacedBy,
	}
	if j.Scopes == nil {
		j.Scopes = []string{}
	}
	if !k.NotAfter.IsZero() {
		j.NotAfter = &k.NotAfter
	}
	if !k.RevokedAt.IsZero() {
		j.RevokedAt = &k.RevokedAt
	}
	return j
}

func (p *printer) writeJSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// issued prints a new key (and the key it replaces, after a rotation).
func (p *printer) issued(key string, info sqlstore.KeyInfo, old *sqlstore.KeyInfo) error {
	if p.json {
		j := p.toJSON(info)
		j.Key = key
		if old != nil {
			o := p.toJSON(*old)
			j.Replaces = &o
		}
		return p.writeJSON(j)
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tCLIENT\tENV\tKIND\tKEY")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", info.Client.KeyID, info.Client.ID, info.Client.Env, kindName(info.Client.Publishable), key)
	return tw.Flush()
}

// keys prints keys as a table or a JSON array (list) or object.
func (p *printer) keys(list []sqlstore.KeyInfo, array bool) error {
	if p.json {
		js := make([]keyJSON, len(list))
		for i, k := range list {
			js[i] = p.toJSON(k)
		}
		if !array && len(js) == 1 {
			return p.writeJSON(js[0])
		}
		return p.writeJSON(js)
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tENV\tKIND\tSTATUS\tCREATED\tNOT AFTER\tROLE\tSCOPES\tIPS")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Client.KeyID, k.Client.Env, kindName(k.Client.Publishable),
			k.Status(p.now), stamp(k.CreatedAt), stamp(k.NotAfter), dash(k.Client.Role),
			dash(strings.Join(k.Client.Scopes, ",")), dash(strings.Join(prefixes(k.Client.IPs), ",")))
	}
	return tw.Flush()
}

// ips prints a key's address ranges.
func (p *printer) ips(k sqlstore.KeyInfo) error {
	if p.json {
		return p.writeJSON(struct {
			KeyID string   `json:"key_id"`
			IPs   []string `json:"ips"`
		}{k.Client.KeyID, prefixes(k.Client.IPs)})
	}
	if len(k.Client.IPs) == 0 {
		fmt.Fprintf(p.w, "%s: no ranges registered: accepted from any address\n", k.Client.KeyID)
		return nil
	}
	for _, ip := range k.Client.IPs {
		fmt.Fprintln(p.w, ip)
	}
	return nil
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// kindName names a key's kind as --kind does.
func kindName(publishable bool) string {
	if publishable {
		return "publishable"
	}
	return "server"
}
