package wasm

import "github.com/tetratelabs/wazero/experimental"

// A guest's linear memory is a Go slice (wazero's own default, kept for
// its safety: a module the watchdog closes mid-call keeps its memory until
// the call returns, because the garbage collector sees it). What the host
// changes is the capacity a new instance starts with.
//
// Language runtimes grow their memory while they initialize: a Rust
// instance starts with 17 pages and grows to 18 in its init hook, a Go one
// from 43 to 52. wazero allocates exactly the initial pages, so that one
// page costs a copy of the whole memory into a new allocation. In a process
// that just started the new pages fault in one by one, which on a VM costs
// more than the copy: a Rust instance took ~13 ms to create at startup,
// ~3.4 ms in a warm process (BenchmarkInstantiate).
//
// So an instance starts with the capacity the plugin's instances have
// needed by the end of init (Plugin.initBytes, the largest seen), and the
// first one, before any has, with a quarter more than its initial memory:
// about the step by which append would grow it, taken in advance. Growing
// into the capacity touches only the pages the guest uses; pages it never
// uses are not resident. Beyond it, a memory grows as wazero grows it, by
// append. Rust instances now take ~1.8 ms at startup, 1.4 ms warm, and
// allocate their memory once (TestInstanceMemoryAllocatedOnce).

// The memory limit is enforced here, not by wazero: wazero is given the
// largest limit (4 GiB), so that every grow reaches Reallocate, which
// refuses one past the limit
// (memory.grow returns -1 to the guest, as it would at wazero's limit) and
// records it in the instance. A call that then fails — a trap, or a
// timeout while the guest's runtime spins or retries — is a memory fault
// (ErrMemory), whatever the memory's size at that moment.

// newAllocator returns the MemoryAllocator of one instance.
func (p *Plugin) newAllocator(in *instance) experimental.MemoryAllocator {
	limit := uint64(p.opts.MemoryLimitPages) * pageSize
	return experimental.MemoryAllocatorFunc(func(capBytes, maxBytes uint64) experimental.LinearMemory {
		hint := uint64(p.initBytes.Load())
		if hint == 0 {
			hint = (capBytes + capBytes/4 + pageSize - 1) / pageSize * pageSize
		}
		return &linearMemory{buf: make([]byte, 0, min(max(capBytes, hint), maxBytes, limit)), limit: limit, failedGrow: &in.failedGrow}
	})
}

// runtimeMemoryPages is what wazero is told the limit is: the largest, so
// that every grow past the plugin's limit reaches Reallocate, which
// refuses and records it. (A module whose initial memory exceeds the
// limit is rejected by Load.)
const runtimeMemoryPages = 65536

// pageSize is the size of a WebAssembly memory page.
const pageSize = 65536

// linearMemory is a guest memory backed by a Go slice.
type linearMemory struct {
	buf        []byte
	limit      uint64
	failedGrow *bool // the instance's: a grow past limit was refused in this call
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Reallocate resizes the memory to size bytes, in place when the capacity
// allows. wazero never asks for more than the memory's limit, nor for less
// than its current size.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit && len(m.buf) > 0 {
		*m.failedGrow = true
		return nil // memory.grow returns -1
	}
	if n := uint64(len(m.buf)); size > n {
		if size <= uint64(cap(m.buf)) {
			m.buf = m.buf[:size]
		} else {
			m.buf = append(m.buf, make([]byte, size-n)...)
		}
	}
	return m.buf
}

// Free does nothing: the garbage collector frees the memory with the
// module. The watchdog closes a module while its call runs, and that call
// may still be growing the memory: it must find it intact.
func (m *linearMemory) Free() {}

// noteInitBytes records the memory size of an instance after init.
func (p *Plugin) noteInitBytes(n int64) {
	for {
		cur := p.initBytes.Load()
		if n <= cur || p.initBytes.CompareAndSwap(cur, n) {
			return
		}
	}
}
