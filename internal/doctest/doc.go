// Package doctest holds the test that compiles every Go block of the
// repository's README.md and docs/*.md, so that the documentation cannot
// drift from the API. It has no code of its own.
package doctest
