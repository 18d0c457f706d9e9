//go:build !unix

package cli

import "time"

// processCPU cannot tell quiet from busy here: no release when quiet
// (release.go); Go's scavenger still returns memory on its own schedule.
func processCPU() (time.Duration, bool) { return 0, false }
