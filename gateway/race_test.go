//go:build race

package gateway_test

// raceEnabled: the race detector makes sync.Pool drop what is put back
// at random, so allocation counts mean nothing under it (TestHitAllocs
// runs without -race in `make test`).
const raceEnabled = true
