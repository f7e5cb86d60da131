package report

import (
	"strings"
	"testing"
)

const sampleRun = `goos: linux
goarch: amd64
pkg: github.com/apiguard/apiguard/bench
cpu: Test CPU @ 3.00GHz
BenchmarkRateLimit/case=1key/lib=ref-bare-2         	 8364789	        30 ns/op	       0 B/op	       0 allocs/op
BenchmarkRateLimit/case=1key/lib=apiguard-2         	  306565	       400 ns/op	     80 B/op	       3 allocs/op
BenchmarkRateLimit/case=1key/lib=echo-2             	  736912	       300 ns/op	     96 B/op	       2 allocs/op
BenchmarkRateLimit/case=1key/lib=httprate-2         	  736912	       500 ns/op	     96 B/op	       12 allocs/op
BenchmarkRateLimit/case=1key/lib=floor-2            	  101972	       200 ns/op	     16 B/op	       1 allocs/op
BenchmarkRateLimit/case=1key/lib=floor-noheaders-2  	  101972	       100 ns/op	     0 B/op	       0 allocs/op
PASS
ok  	github.com/apiguard/apiguard/bench	73.349s
BenchmarkRateLimit/case=1key/lib=ref-bare-2         	 8364789	        40 ns/op	       0 B/op	       0 allocs/op
BenchmarkRateLimit/case=1key/lib=apiguard-2         	  306565	       600 ns/op	     80 B/op	       3 allocs/op
BenchmarkRateLimit/case=1key/lib=echo-2             	  736912	       700 ns/op	     96 B/op	       2 allocs/op
BenchmarkRateLimit/case=1key/lib=httprate-2         	  736912	       500 ns/op	     96 B/op	       12 allocs/op
BenchmarkRateLimit/case=1key/lib=floor-2            	  101972	       200 ns/op	     16 B/op	       1 allocs/op
BenchmarkRateLimit/case=1key/lib=floor-noheaders-2  	  101972	       100 ns/op	     0 B/op	       0 allocs/op
BenchmarkRateLimit/case=1key/lib=apiguard-2         	  306565	       500 ns/op	     80 B/op	       3 allocs/op
BenchmarkHashAuth/case=1MiB/lib=apiguard-2          	       6	  19815419 ns/op	  52.92 MB/s	 5241680 B/op	      30 allocs/op
BenchmarkHashAuth/case=1MiB/lib=floor-2             	      31	   9907709.5 ns/op	 105.26 MB/s	 1048992 B/op	       4 allocs/op
BenchmarkOther-2                                    	      31	   9962033 ns/op
`

func TestParse(t *testing.T) {
	res, err := Parse(strings.NewReader(sampleRun))
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU != "Test CPU @ 3.00GHz" || res.Procs != 2 {
		t.Errorf("cpu %q, procs %d", res.CPU, res.Procs)
	}
	if len(res.Categories) != 2 || res.Categories[0].Name != "RateLimit" || res.Categories[1].Name != "HashAuth" {
		t.Fatalf("categories %v", res.Categories)
	}
	c := res.Categories[0].Cases[0]
	if c.Name != "1key" || len(c.Rows) != 6 {
		t.Fatalf("case %q with %d rows", c.Name, len(c.Rows))
	}
	ag := c.Row("apiguard")
	if ag.Samples != 3 || ag.NsOp != 500 || ag.BytesOp != 80 || ag.Allocs != 3 {
		t.Errorf("apiguard: %+v, want 3 samples, median 500 ns/op, 80 B/op, 3 allocs/op", *ag)
	}
	if ref := c.Row("ref-bare"); ref.NsOp != 35 {
		t.Errorf("ref-bare: median of two samples %v, want 35", ref.NsOp)
	}
	if f := c.Floor(); f == nil || f.Lib != "floor" {
		t.Errorf("floor: %v, want the row named floor", f)
	}
	// echo's median is (300+700)/2 = 500, as httprate's: the first of equals.
	if b := c.BestPeer(); b == nil || b.Lib != "echo" {
		t.Errorf("best peer: %v, want echo", b)
	}
	if r := res.Categories[1].Cases[0].Floor(); r.NsOp != 9907709.5 || r.BytesOp != 1048992 {
		t.Errorf("hash floor: %+v", *r)
	}
}

func TestWriteTables(t *testing.T) {
	res, err := Parse(strings.NewReader(sampleRun))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteTables(&b, res)
	out := b.String()
	for _, want := range []string{
		"### RateLimit\n",
		"| 1key | **apiguard** | 500 | 80 | 3 | 2.50x | 1.00x | 3 |\n",
		"| 1key | echo (best peer) | 500 | 96 | 2 | 2.50x | 1.00x | 2 |\n",
		"| 1key | floor-noheaders | 100 | 0 | 0 | 0.50x | 0.20x | 2 |\n",
		"| 1key | ref-bare | 35 | 0 | 0 |  |  | 2 |\n",
		"| 1MiB | **apiguard** | 19815419 | 5241680 | 30 | 2.00x |  | 1 |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the tables lack %q:\n%s", want, out)
		}
	}
}

func TestLoopback(t *testing.T) {
	rounds, err := ParseLoopback(strings.NewReader("bare 1000\nguarded 900\nbare-headers 990\nbare 1200\nguarded 960\nbare-headers 1000\nbare 1100\nguarded 1000\nbare-headers 980\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteLoopback(&b, rounds)
	for _, want := range []string{"| bare | 1100 | 1000, 1200, 1100 |", "| guarded | 960 | 900, 960, 1000 |", "guarded / bare: **0.873**",
		"| bare-headers | 990 | 990, 1000, 980 |", "guarded / bare-headers: **0.970**"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := ParseLoopback(strings.NewReader("bare\n")); err == nil {
		t.Error("a line without a figure: no error")
	}
}
