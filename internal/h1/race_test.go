//go:build race

package h1_test

// raceEnabled: the race detector allocates on its own, so allocation
// counts mean nothing under it (TestServeHitAllocatesNothing runs without -race
// in `make test`).
const raceEnabled = true
