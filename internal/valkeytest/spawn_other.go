//go:build !linux

package valkeytest

import "os/exec"

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
