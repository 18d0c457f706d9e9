// Package examples holds what operators copy: the walkthrough's demo origin
// (origin/), example configurations (configs/) and the walkthrough
// (walkthrough/, run by `make demo`). It has no code of its own; its tests
// check that every example configuration passes `edgecache config check`
// and serves a miss and then a hit against real Valkey servers of the
// kind the example names.
package examples
