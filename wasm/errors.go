package wasm

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/edgecache/edgecache/hook"
)

// Load errors: the module is not a usable plugin. Wrapped with detail.
var (
	// ErrABIVersion is returned by Load and Compile when the module targets
	// an ABI version this host does not implement, or declares none.
	ErrABIVersion = errors.New("wasm: unsupported plugin ABI version")
	// ErrInvalidModule is returned by Load and Compile when the module
	// imports something the host does not provide, exports a hook with the
	// wrong signature, or exports no memory.
	ErrInvalidModule = errors.New("wasm: invalid plugin module")
	// ErrHostClosed is returned by Load and Compile after Host.Close.
	ErrHostClosed = errors.New("wasm: host closed")
	// ErrInit is returned by Load when the plugin's init hook rejects its
	// config or fails.
	ErrInit = errors.New("wasm: plugin init failed")
)

// Call errors: the hook did not decide and the caller must use the
// built-in policy. Faults (ErrTimeout, ErrTrap, ErrMemory, ErrABI) also
// discard the instance that made them.
var (
	// ErrTimeout: the call ran past the plugin's deadline and the watchdog
	// closed its instance.
	ErrTimeout = errors.New("wasm: plugin call timed out")
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow, a language-level panic that exits the module…).
	ErrTrap = errors.New("wasm: plugin trapped")
	// ErrMemory: the guest trapped with its memory at the plugin's limit.
	ErrMemory = errors.New("wasm: plugin out of memory")
	// ErrABI: the guest broke the ABI: a pointer or length outside its
	// memory, a result larger than allowed, an invalid value, or a setter
	// called from the wrong hook.
	ErrABI = errors.New("wasm: plugin broke the ABI")
	// ErrBusy: every instance of the pool stayed busy for the plugin's
	// timeout. Not a fault: no instance misbehaved.
	ErrBusy = errors.New("wasm: plugin pool busy")
	// ErrSuspended: the plugin faulted BreakerFaults times in a row and is
	// suspended for a while: calls fall back at once instead of trapping
	// and re-instantiating on every request. Not a fault.
	ErrSuspended = errors.New("wasm: plugin suspended after repeated faults")
	// ErrClosed: the plugin was closed (replaced by a reload).
	ErrClosed = errors.New("wasm: plugin closed")
	// ErrNoHook: the plugin does not export the hook.
	ErrNoHook = errors.New("wasm: plugin does not export the hook")
)

// fault kinds, indexes of PluginStats.Faults.
const (
	faultTimeout = iota
	faultTrap
	faultMemory
	faultABI
	numFaults
)

var faultErrs = [numFaults]error{ErrTimeout, ErrTrap, ErrMemory, ErrABI}

// abiViolation is what host functions panic with when the guest breaks the
// ABI. wazero recovers the panic and the call returns it wrapped; the
// instance records the detail too.
type abiViolation struct{ msg string }

func (v *abiViolation) Error() string { return "wasm: abi: " + v.msg }

// HookError is the error of a failed hook call: which plugin and hook, and
// the cause, one of the call errors above (errors.Is works on it).
type HookError struct {
	Plugin string
	Hook   hook.ID
	Err    error  // ErrTimeout, ErrTrap, ErrMemory, ErrABI, ErrBusy, ErrSuspended, ErrClosed
	Detail string // the guest's trap message or the ABI rule it broke
}

func (e *HookError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v: plugin %q, %s hook", e.Err, e.Plugin, e.Hook)
	}
	return fmt.Sprintf("%v: plugin %q, %s hook: %s", e.Err, e.Plugin, e.Hook, e.Detail)
}

func (e *HookError) Unwrap() error { return e.Err }

// faultLogInterval is the least time between two fault log lines of one
// plugin; faults in between are counted and reported with the next line.
const faultLogInterval = time.Second

// faultLog rate-limits the fault log of one plugin.
type faultLog struct {
	last       atomic.Int64 // unix nanos of the last line
	suppressed atomic.Int64
}

func (l *faultLog) log(log *slog.Logger, err *HookError) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(faultLogInterval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	log.Warn("plugin fault, served with the built-in policy",
		"plugin", err.Plugin, "hook", err.Hook.String(), "err", err.Err, "detail", err.Detail,
		"suppressed", l.suppressed.Swap(0))
}
