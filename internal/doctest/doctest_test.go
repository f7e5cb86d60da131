package doctest

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// block is one ```go block of a Markdown file.
type block struct {
	file string // relative to the repository root
	line int    // of the opening fence
	code string
}

// blocks returns the ```go blocks of the Markdown file at path. A fence may
// be indented (a block inside a list item); its indentation is removed from
// the block's lines.
func blocks(t *testing.T, root, rel string) []block {
	t.Helper()
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out    []block
		cur    *block
		indent string
		sb     strings.Builder
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```go") && strings.TrimSpace(trimmed[5:]) == "":
			cur = &block{file: rel, line: n}
			indent = line[:len(line)-len(trimmed)]
			sb.Reset()
		case cur != nil && strings.HasPrefix(trimmed, "```"):
			cur.code = sb.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			sb.WriteString(strings.TrimPrefix(line, indent))
			sb.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s:%d: a ```go block that is never closed", rel, cur.line)
	}
	return out
}

// imports are the packages a block may use, by the name it uses them by.
// A block gets the import of each name it writes as "name.".
var imports = map[string]string{
	"apiguard":     "github.com/apiguard/apiguard",
	"apiguardtest": "github.com/apiguard/apiguard/apiguardtest",
	"client":       "github.com/apiguard/apiguard/client",
	"ginguard":     "github.com/apiguard/apiguard/ginguard",
	"redisstore":   "github.com/apiguard/apiguard/redisstore",
	"sqlstore":     "github.com/apiguard/apiguard/sqlstore",
	"otelapiguard": "github.com/apiguard/apiguard/otelapiguard",
	"otel":         "go.opentelemetry.io/otel",
	"gin":          "github.com/gin-gonic/gin",
	"chi":          "github.com/go-chi/chi/v5",
	"echo":         "github.com/labstack/echo/v4",
	"redis":        "github.com/redis/go-redis/v9",
	"context":      "context",
	"errors":       "errors",
	"fmt":          "fmt",
	"http":         "net/http",
	"httptest":     "net/http/httptest",
	"io":           "io",
	"json":         "encoding/json",
	"log":          "log",
	"netip":        "net/netip",
	"os":           "os",
	"slog":         "log/slog",
	"sql":          "database/sql",
	"strings":      "strings",
	"testing":      "testing",
	"time":         "time",
}

// assumed declares what the blocks take as given: the Guard g of the API
// at hand, its KeyStore, a ServeMux, the handlers they route to, and the
// request of a handler.
const assumed = `package %s

import (
	"context"
	"net/http"
	"time"

	"github.com/apiguard/apiguard"
)

var (
	g         *apiguard.Guard
	keys      *apiguard.MemoryKeyStore
	mux       *http.ServeMux
	ctx       context.Context
	w         http.ResponseWriter
	r         *http.Request
	handler   http.Handler
	pemBytes  []byte
	clientID  string
	requestID string
	key       string
	apiKey    string
	secret    string
	serverKey string
	merchantID string
	req       *http.Request
	clock     interface{ Now() time.Time }
)

// The handlers of a route, and the wrappers of a group, as the examples
// module names them.
var (
	create, order, charges http.Handler
	perIP, perAdmin        apiguard.Middleware
	errTrxRequired         error
)

// ownerOf names the client that owns a transaction.
func ownerOf(trxID string) (string, error) { return "", nil }

// priceForRole is a ComputedField's function.
func priceForRole(r *http.Request, c *apiguard.Client) (string, error) { return "", nil }

var _, _ = ownerOf, priceForRole

func createPayment(w http.ResponseWriter, r *http.Request) {}
func getPayment(w http.ResponseWriter, r *http.Request)    {}
func countPayments(w http.ResponseWriter, r *http.Request) {}
func health(w http.ResponseWriter, r *http.Request)        {}

var _, _, _, _ = createPayment, getPayment, countPayments, health
`

// ignored are the compiler's complaints that a fragment cannot help: a
// block shows how to make a value, not what to do with it next.
var ignored = regexp.MustCompile(`declared and not used|imported and not used`)

// droppedError finds a constructor whose error a block drops.
var droppedError = regexp.MustCompile(`, _ :?= [\w.]*\b(New|Must|Parse|Generate)\w*\(`)

// TestDocsCompile compiles every ```go block of README.md and docs/*.md. A
// block that starts with "package" is a file as it is; a block of
// declarations goes at the top level of a package; any other block is the
// body of a function that returns an error. Each gets the imports of the
// packages it names and the declarations in assumed. It needs the go
// command and the repository's go.work (every module of the repository is
// importable, as in local development).
func TestDocsCompile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mds := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		mds = append(mds, filepath.Join("docs", filepath.Base(d)))
	}
	var all []block
	for _, md := range mds {
		all = append(all, blocks(t, root, md)...)
	}
	if len(all) < 5 {
		t.Fatalf("found %d Go blocks; the README alone has more", len(all))
	}

	tmp := t.TempDir()
	mod := filepath.Join(tmp, "m")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mod, "go.mod"), "module example.com/doctest\n\ngo 1.26.0\n")
	write(t, filepath.Join(tmp, "go.work"), workspace(t, root))

	for i, b := range all {
		if m := droppedError.FindString(b.code); m != "" {
			t.Errorf("%s:%d: drops a constructor's error (%q): check it", b.file, b.line, m)
		}
		pkg := "b" + strconv.Itoa(i)
		dir := filepath.Join(mod, pkg)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "assumed.go"), fmt.Sprintf(assumed, pkg))
		write(t, filepath.Join(dir, "block.go"), source(pkg, b.code))
	}

	cmd := exec.Command("go", "build", "-gcflags=-e", "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(tmp, "go.work"), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	// Lines are "bN/block.go:L:C: message".
	errLine := regexp.MustCompile(`^(?:\./)?b(\d+)/(\w+\.go):(\d+):\d+: (.*)$`)
	var failures []string
	unknown := false
	for _, line := range strings.Split(string(out), "\n") {
		m := errLine.FindStringSubmatch(line)
		if m == nil {
			if line != "" && !strings.HasPrefix(line, "#") {
				unknown = true
			}
			continue
		}
		if ignored.MatchString(m[4]) {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		b := all[i]
		failures = append(failures, fmt.Sprintf("%s:%d (block line %s of %s): %s", b.file, b.line, m[3], m[2], m[4]))
	}
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
	if unknown && len(failures) == 0 {
		t.Errorf("go build failed:\n%s", out)
	}
}

// source returns the file that holds code in package pkg.
func source(pkg, code string) string {
	var imp strings.Builder
	names := make([]string, 0, len(imports))
	for name := range imports {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if regexp.MustCompile(`\b` + name + `\.[A-Z]`).MatchString(code) {
			fmt.Fprintf(&imp, "\t%s %q\n", name, imports[name])
		}
	}
	if strings.HasPrefix(code, "package ") {
		// A whole file: its own package clause and imports, renamed.
		return "package " + pkg + strings.TrimPrefix(code[strings.Index(code, "\n"):], "")
	}
	head := "package " + pkg + "\n\nimport (\n" + imp.String() + ")\n\n"
	if _, err := parser.ParseFile(token.NewFileSet(), "", head+code, parser.SkipObjectResolution); err == nil {
		return head + code
	}
	return head + "func _() error {\n" + code + "\treturn nil\n}\n"
}

// workspace returns a go.work that uses every module of the repository's
// go.work, by absolute path, and the doctest module.
func workspace(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "use (":
			line += "\n\t./m"
		case trimmed == ".":
			line = "\t" + root
		case strings.HasPrefix(trimmed, "./"):
			line = "\t" + filepath.Join(root, trimmed)
		case strings.HasPrefix(trimmed, "use ./") || trimmed == "use .":
			line = "use (\n\t./m\n\t" + filepath.Join(root, strings.TrimPrefix(trimmed, "use ")) + "\n)"
		}
		if i := strings.Index(line, "=> ./"); i >= 0 {
			line = line[:i] + "=> " + filepath.Join(root, strings.TrimSpace(line[i+3:]))
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
