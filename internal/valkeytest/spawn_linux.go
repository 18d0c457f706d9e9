package valkeytest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Servers get SIGKILL when the thread that started them dies
// (PR_SET_PDEATHSIG), so a test binary killed by a timeout leaves no server
// behind. The signal follows the thread, not the process: every server is
// started from one goroutine locked to a thread that lives as long as the
// process, or a Go thread that exits would take servers with it.
var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread outlives every server
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd, done}
	return <-done
}
