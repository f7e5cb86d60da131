// Command benchreport writes bench/RESULTS.md from the output of
// scripts/bench.sh's runs: the go test -bench output of every pass, the
// benchstat summary of it, and the loopback rounds.
//
//	benchreport -bench raw.txt [-benchstat stat.txt] [-loopback rounds.txt] \
//		-go "go1.26.0 linux/amd64" -cores 2 -date 2026-11-30 -command "COUNT=6 bash scripts/bench.sh"
//
// With -loopback and no -bench it prints the loopback table alone.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/apiguard/apiguard/bench/internal/report"
)

func main() {
	benchFile := flag.String("bench", "", "the `file` of go test -bench output")
	statFile := flag.String("benchstat", "", "the `file` of benchstat's summary")
	loopFile := flag.String("loopback", "", "the `file` of loopback rounds: <route> <requests/s> a line")
	loopHow := flag.String("loopback-how", "", "how the loopback load was made (`text`)")
	goVersion := flag.String("go", "", "the go version (`text`)")
	cores := flag.String("cores", "", "the number of CPU cores")
	date := flag.String("date", "", "the date of the run")
	command := flag.String("command", "", "the command that made the run")
	count := flag.String("count", "", "passes per category")
	load := flag.String("load", "", "the machine's load averages during the run (`text`)")
	flag.Parse()
	if *benchFile == "" && *loopFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *benchFile == "" {
		if err := loopbackTable(*loopFile); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*benchFile, *statFile, *loopFile, *loopHow, *goVersion, *cores, *date, *command, *count, *load); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func loopbackTable(loopFile string) error {
	f, err := os.Open(loopFile)
	if err != nil {
		return err
	}
	defer f.Close()
	rounds, err := report.ParseLoopback(f)
	if err != nil {
		return err
	}
	report.WriteLoopback(os.Stdout, rounds)
	return nil
}

func run(benchFile, statFile, loopFile, loopHow, goVersion, cores, date, command, count, load string) error {
	raw, err := os.ReadFile(benchFile)
	if err != nil {
		return err
	}
	res, err := report.Parse(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if len(res.Categories) == 0 {
		return fmt.Errorf("%s holds no benchmark of the bench module", benchFile)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Benchmark results

Written by scripts/bench.sh; do not edit by hand (see README.md).

- date: %s
- machine: %s, %s cores, GOMAXPROCS %d; %s
- command: %s
- passes: %s per category, interleaved (each pass runs every category once)
- load averages (1, 5, 15 min): %s

Each figure is the median of the passes. **× floor** is ns/op divided by
the ns/op of the floor (the hand-written code doing the same job,
lib=floor) of the same case; **× best peer** divides by the fastest peer
library of the case. ref-... rows (a bare handler, a router alone) take
part in no ratio. All figures of a table come from the same runs of one
test binary.

## Go benchmarks

`, date, res.CPU, cores, res.Procs, goVersion, "`"+command+"`", count, load)
	report.WriteTables(&b, res)
	if loopFile != "" {
		f, err := os.Open(loopFile)
		if err != nil {
			return err
		}
		rounds, err := report.ParseLoopback(f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "## Loopback throughput\n\n%s\n\n", loopHow)
		report.WriteLoopback(&b, rounds)
		b.WriteString("\n")
	}
	if statFile != "" {
		stat, err := os.ReadFile(statFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "## benchstat\n\nThe same runs through benchstat (medians, 95%% confidence intervals):\n\n```\n%s```\n", stat)
	}
	_, err = os.Stdout.WriteString(b.String())
	return err
}
