//go:build !linux

package cli

// trimExecutable does nothing outside Linux (trim_linux.go).
func trimExecutable() (int64, error) { return 0, nil }
