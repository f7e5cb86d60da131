// Package report turns the output of `go test -bench` runs of the bench
// module into the tables of RESULTS.md: per category and case, the median
// ns/op, B/op and allocs/op of each library, and its ratios to the floor
// and to the best peer measured in the same run.
package report

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// A Row is one library in one case of a category, with the medians of its
// samples.
type Row struct {
	Lib     string
	Samples int
	NsOp    float64
	BytesOp float64
	Allocs  float64
	hasMem  bool
}

// Kind is what a library is in the tables: the library under test
// (apiguard...), a floor (floor...), a reference that takes part in no
// ratio (ref-...), or a peer (anything else).
func Kind(lib string) string {
	switch {
	case strings.HasPrefix(lib, "apiguard"):
		return "apiguard"
	case strings.HasPrefix(lib, "floor"):
		return "floor"
	case strings.HasPrefix(lib, "ref-"):
		return "ref"
	}
	return "peer"
}

// A Case is one case of a category, its rows in the order they were first
// seen.
type Case struct {
	Name string
	Rows []*Row
}

// Row returns the row of lib, or nil.
func (c *Case) Row(lib string) *Row {
	for _, r := range c.Rows {
		if r.Lib == lib {
			return r
		}
	}
	return nil
}

// Floor returns the row named "floor", the floor doing the job apiguard
// does, or nil.
func (c *Case) Floor() *Row { return c.Row("floor") }

// BestPeer returns the peer row with the lowest ns/op, or nil.
func (c *Case) BestPeer() *Row {
	var best *Row
	for _, r := range c.Rows {
		if Kind(r.Lib) == "peer" && (best == nil || r.NsOp < best.NsOp) {
			best = r
		}
	}
	return best
}

// A Category is the cases of one benchmark function, such as
// BenchmarkRateLimit (Name "RateLimit").
type Category struct {
	Name  string
	Cases []*Case
}

// Results is what Parse reads.
type Results struct {
	CPU        string
	Procs      int // GOMAXPROCS, from the names' suffix
	Categories []*Category
}

type sample struct{ ns, bytes, allocs []float64 }

// Parse reads the output of `go test -bench` runs (several concatenated:
// each name's samples are pooled) and returns the medians of the
// benchmarks named Benchmark<Category>/case=<case>/lib=<library>; other
// lines are ignored.
func Parse(r io.Reader) (*Results, error) {
	res := &Results{}
	samples := map[[3]string]*sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			res.CPU = strings.TrimSpace(cpu)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if p, err := strconv.Atoi(name[i+1:]); err == nil {
				name, res.Procs = name[:i], p
			}
		}
		parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
		if len(parts) != 3 || !strings.HasPrefix(parts[1], "case=") || !strings.HasPrefix(parts[2], "lib=") {
			continue
		}
		key := [3]string{parts[0], strings.TrimPrefix(parts[1], "case="), strings.TrimPrefix(parts[2], "lib=")}
		s := samples[key]
		if s == nil {
			s = &sample{}
			samples[key] = s
			res.add(key)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("report: %q: %v", line, err)
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, cat := range res.Categories {
		for _, c := range cat.Cases {
			for _, row := range c.Rows {
				s := samples[[3]string{cat.Name, c.Name, row.Lib}]
				row.Samples = len(s.ns)
				row.NsOp = Median(s.ns)
				row.BytesOp, row.Allocs = Median(s.bytes), Median(s.allocs)
				row.hasMem = len(s.bytes) > 0
			}
		}
	}
	return res, nil
}

// add records a row for key, in the order first seen.
func (res *Results) add(key [3]string) {
	i := slices.IndexFunc(res.Categories, func(c *Category) bool { return c.Name == key[0] })
	if i < 0 {
		res.Categories = append(res.Categories, &Category{Name: key[0]})
		i = len(res.Categories) - 1
	}
	cat := res.Categories[i]
	j := slices.IndexFunc(cat.Cases, func(c *Case) bool { return c.Name == key[1] })
	if j < 0 {
		cat.Cases = append(cat.Cases, &Case{Name: key[1]})
		j = len(cat.Cases) - 1
	}
	cat.Cases[j].Rows = append(cat.Cases[j].Rows, &Row{Lib: key[2]})
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// WriteTables writes a Markdown table per category: for each case and
// library the median ns/op, B/op and allocs/op, and the ratio of ns/op to
// the floor's and to the best peer's of the same case (none for
// references).
func WriteTables(w io.Writer, res *Results) {
	for _, cat := range res.Categories {
		fmt.Fprintf(w, "### %s\n\n", cat.Name)
		fmt.Fprintln(w, "| case | library | ns/op | B/op | allocs/op | × floor | × best peer | runs |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, c := range cat.Cases {
			floor, best := c.Floor(), c.BestPeer()
			for _, r := range c.Rows {
				vsFloor, vsBest := "", ""
				if Kind(r.Lib) != "ref" {
					vsFloor, vsBest = ratio(r, floor), ratio(r, best)
				}
				lib := r.Lib
				switch {
				case Kind(r.Lib) == "apiguard":
					lib = "**" + lib + "**"
				case r == best:
					lib += " (best peer)"
				}
				mem := [2]string{"", ""}
				if r.hasMem {
					mem = [2]string{num(r.BytesOp), num(r.Allocs)}
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", c.Name, lib, num(r.NsOp), mem[0], mem[1], vsFloor, vsBest, r.Samples)
			}
		}
		fmt.Fprintln(w)
	}
}

func ratio(r, base *Row) string {
	if base == nil || base.NsOp == 0 {
		return ""
	}
	return strconv.FormatFloat(r.NsOp/base.NsOp, 'f', 2, 64) + "x"
}

// num formats a median: whole numbers from 100 up, three significant
// digits below.
func num(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// A Round is one measurement of the loopback test: requests per second on
// one route.
type Round struct {
	Route string
	RPS   float64
}

// ParseLoopback reads lines "<route> <requests per second>", one per
// round, in the order they were measured.
func ParseLoopback(r io.Reader) ([]Round, error) {
	var rounds []Round
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("report: loopback line %q: want <route> <requests/s>", sc.Text())
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("report: loopback line %q: %v", sc.Text(), err)
		}
		rounds = append(rounds, Round{f[0], v})
	}
	return rounds, sc.Err()
}

// WriteLoopback writes the loopback table: each route's requests per
// second in every round and their median, and the ratio of the guarded
// route's median to the bare route's, and to the bare-headers route's
// when it was measured.
func WriteLoopback(w io.Writer, rounds []Round) {
	var routes []string
	by := map[string][]float64{}
	for _, r := range rounds {
		if by[r.Route] == nil {
			routes = append(routes, r.Route)
		}
		by[r.Route] = append(by[r.Route], r.RPS)
	}
	fmt.Fprintln(w, "| route | requests/s, median | rounds |")
	fmt.Fprintln(w, "| --- | ---: | --- |")
	for _, rt := range routes {
		var each []string
		for _, v := range by[rt] {
			each = append(each, strconv.FormatFloat(v, 'f', 0, 64))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", rt, strconv.FormatFloat(Median(by[rt]), 'f', 0, 64), strings.Join(each, ", "))
	}
	g := Median(by["guarded"])
	if b := Median(by["bare"]); b > 0 && g > 0 {
		fmt.Fprintf(w, "\nguarded / bare: **%s**\n", strconv.FormatFloat(g/b, 'f', 3, 64))
	}
	if b := Median(by["bare-headers"]); b > 0 && g > 0 {
		fmt.Fprintf(w, "\nguarded / bare-headers: **%s**\n", strconv.FormatFloat(g/b, 'f', 3, 64))
	}
}
