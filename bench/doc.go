// Package bench compares apiguard with peer libraries and with hand-written
// floors that do the same job as leanly as it can be done, in one test
// binary, so that every figure of a run is measured under the same
// conditions.
//
// The benchmarks are in the package's test files, one function per job:
// BenchmarkBearer, BenchmarkRateLimit, BenchmarkHashAuth and
// BenchmarkSessionVerify. Each has sub-benchmarks named
// case=<case>/lib=<library>; a library named floor... is a floor, one named
// ref-... a reference (a bare handler, a router alone) that takes part in no
// ratio. scripts/bench.sh runs them interleaved and writes RESULTS.md.
//
// Every benchmark runs through one harness (Run, RunParallel), which serves
// a prepared request to an http.Handler with a ResponseWriter that keeps
// nothing and allocates nothing, and fails the benchmark unless every
// request was accepted (status 200) and reached the handler.
//
// The module is not published: it exists to be run from this repository.
package bench
