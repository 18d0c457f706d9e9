// Package wasm is the host of edgecache's policy plugins: the wazero
// runtime, the compilation cache, a bounded pool of instances per plugin,
// the host functions of the plugin ABI (plugins/ABI.md), and the limits and
// fault isolation that keep a broken plugin from failing a request. It is
// the only package that imports wazero.
//
// # Lifecycle
//
// A Host owns the compilation cache (on disk with Options.CacheDir, so a
// restart with the same plugins does not compile again: a Go plugin takes
// 1–3 s to compile on a 2-core machine and ~60 ms to load from the cache;
// C, Rust and AssemblyScript plugins a few ms either way). Host.Load turns
// a module into a ready Plugin:
//
//  1. fill in PluginOptions' defaults and validate them;
//  2. create the plugin's wazero runtime (memory limit, termination checks
//     on, the shared compilation cache) with its two import modules:
//     "edgecache" (the ABI) and WASI preview 1;
//  3. compile the module (a cache hit when it was compiled before) and
//     validate it: the edgecache_abi_v1 export, the hooks' signatures,
//     every import known, a memory exported;
//  4. start the pool's watchdog, then create one instance, running its
//     _initialize and init hook (with PluginOptions.Config);
//  5. start the pool's filler, which creates further instances, up to
//     PoolSize, when calls ask for them (see Pools).
//
// Any failure undoes the steps before it: a module that does not
// instantiate, or whose init hook rejects the config, fails Load. Load
// returns as soon as one instance is ready, so that a gateway with several
// plugins starts serving without waiting for every pool (a Rust instance
// takes a few milliseconds, a Go one ten). Plugin.WaitFull grows the pool
// to PoolSize, waits for it and reports an instance that failed its init meanwhile (the filler
// logs it and retries with backoff). Plugin.Close refuses new calls,
// waits for the calls in flight (each is bounded by the timeout), stops the
// pool's goroutines and closes the runtime. A reload is the gateway's: a
// plugin whose module bytes and configuration did not change is kept as it
// is (shared by the two generations); a changed one is loaded, its pool
// filled, the generation that uses it published, and the old plugin closed
// once the calls on the old generation finish.
//
// The memory limit is the instances' allocator's (memory.go): wazero is
// given 4 GiB, the allocator refuses a grow past the limit (memory.grow
// returns -1) and records it, and a call that then fails is ErrMemory.
//
// # Pools
//
// A plugin's pool is elastic: it starts with the one instance Load
// created and grows on demand up to PoolSize. A call takes the free
// instance released last (a stack, so that under light load the same few
// stay busy); when every instance is busy it raises the pool's target by
// one, below PoolSize, and waits at most the timeout (then ErrBusy) for
// whichever comes first, an instance released or the one the filler
// creates. It runs one hook and gives the instance back. An instance runs
// one call at a time and is recycled after MaxCallsPerInstance calls,
// which bounds what a leaky guest heap can grow to. Instances that were
// discarded or recycled are replaced by the filler, in the background. An
// instance left free for IdleTimeout (DefaultIdleTimeout, 30 s) is closed
// and lowers the target, keeping one: a plugin that is defined but cold
// costs one instance (a Go one ~4.4 MiB), not PoolSize. The filler is the
// only goroutine that creates instances after Load, and only while the
// pool is below its target, so the pool never exceeds PoolSize.
//
// What that costs: the first calls of a burst that outgrows the pool wait
// for an instantiation (0.1–8 ms, below), or for a busy instance to be
// released, whichever is first; and when the only instance is recycled,
// the next call waits for its replacement. A reload that swaps a plugin
// calls WaitFull, so the new pool starts at PoolSize, and shrinks when
// idle.
//
// A guest's memory is a Go slice, as wazero makes it, but an instance
// starts with the capacity the plugin's earlier instances needed by the
// end of init (the first, a quarter more than its initial pages): runtimes
// grow their memory in init (Rust from 17 pages to 18, Go from 43 to 52),
// and growing past the capacity copies the whole memory into fresh pages,
// which in a process that just started fault in one by one (memory.go).
//
// DefaultPoolSize is 4: hook calls do no I/O, so more instances than cores
// only help callers that were descheduled mid-call; 4 covers a 2-core box
// with room for that. Measured per instance (BenchmarkInstantiate): WAT
// 64 KiB of linear memory and 0.1 ms to instantiate; C 128 KiB, 0.2 ms;
// AssemblyScript 64 KiB, 0.4 ms; Rust 1.1 MiB, 1–3 ms; Go 3.3 MiB of
// linear memory (4.4 MiB of Go heap in all) and 5–8 ms. Four Go instances
// cost about 18 MiB when all are busy; raise PoolSize for C, Rust or AssemblyScript plugins
// on bigger machines, lower it for Go plugins on small ones.
//
// Every call runs under a deadline (Timeout) and every instance under a
// memory limit (MemoryLimitPages, a wazero runtime setting: hence one
// runtime per plugin). Termination checks (WithCloseOnContextDone) stay on:
// without them a guest in an infinite loop can never be stopped and the
// next Go GC, which must stop every goroutine, waits for it forever.
//
// Deadlines are enforced by one watchdog goroutine per pool, not by a
// timer and a cancellable context per call: each instance publishes its
// call's deadline in an atomic, and the watchdog, ticking every quarter of
// the timeout (1–25 ms), closes the module of any instance past it
// (CloseWithExitCode). The guest stops at its next loop back-edge. The call
// itself runs with a context that is never done: the instance itself,
// whose identity is also how host functions find the call's state without
// an allocation or a context value lookup. Stock wazero v1.12 still starts
// a goroutine per call when termination checks are on, whatever the
// context (wazero#2466): measured here, a trivial hook costs ~145 ns with
// checks off and 1.5–2.3 µs with them on, 3 allocations and ~180 B per
// call, all of them that goroutine. This is why the key hook is memoized.
//
// # Faults
//
// A call fails — and the caller uses the built-in policy — when:
//
//   - the guest traps (unreachable, out-of-bounds, a language runtime's
//     panic that exits the module): ErrTrap;
//   - it runs past the deadline: ErrTimeout. Termination checks sit on loop
//     back-edges only, so a runaway recursion is not stopped by the
//     deadline but by wazero's stack limit, ~0.7 s later (counted as a
//     timeout). A guest growing its memory is bounded by the limit;
//   - it traps with its memory within a quarter of the limit (at most
//     4 MiB) of it: ErrMemory;
//   - it breaks the ABI (a buffer outside its memory, a result past a
//     limit, an invalid value, a setter of another hook): ErrABI. The host
//     function panics, which aborts the guest at once;
//   - no instance is free within the timeout (ErrBusy), the plugin is
//     suspended (ErrSuspended, below) or closed (ErrClosed); these are not
//     faults of an instance.
//
// An instance that faulted is discarded, never reused: wazero leaves a
// trapped instance callable, but its memory and globals may be anywhere.
// Faults are counted per hook and per kind (Plugin.Stats) and logged at
// most once a second per plugin, with the number of faults suppressed.
// A hook that returns non-zero declines: not a fault, the instance is kept.
//
// A plugin that faults BreakerFaults (10) times in a row is suspended:
// its calls fail with ErrSuspended at once, for BreakerCooldown (1 s),
// doubling up to 30 s while it keeps faulting after each cooldown; one
// successful call resets it. Without this, a plugin that traps on every
// request would cost an instantiation per request.
//
// # Memoization
//
// A guest call costs microseconds; the key hook runs on every request, hits
// included. So the host memoizes it: host functions note which request
// fields a key hook reads (method, scheme, host, path, query, and headers by
// canonical name). The plugin's read set is the union of the fields its key
// hook ever read; the memo maps the values of those fields to the hook's
// result. A lookup hashes the request's values of the read set (maphash,
// seeded per plugin, no allocation), then compares them with the entry's
// stored values, so a hash collision is a miss, never a wrong key. When a
// call reads a field outside the read set, the set grows (a new immutable
// generation) and the memo is flushed: entries keyed by the smaller set are
// unreachable. The memo is bounded (MemoEntries, 16 shards, random
// eviction) and is disabled for a plugin whose key hook reads more than 32
// distinct headers.
//
// This is sound for a key hook that is a function of the fields it reads,
// which the Key policy's contract already requires: if a request agrees
// with a memoized one on every field the hook has ever read, it agrees on
// every field the hook read for that entry, so the hook would take the same
// path and return the same result. The host sees one kind of impurity: a
// call that reads the wall clock, a CPU clock or randomness (WASI
// clock_time_get with REALTIME/PROCESS_CPUTIME/THREAD_CPUTIME, random_get)
// is used once and not memoized. The monotonic clock is not counted, as
// language runtimes (Go's scheduler) read it for their own bookkeeping;
// measured, a Go guest's key hook reads neither the wall clock nor
// randomness, so Go plugins are memoized. State a guest keeps across calls
// is invisible to the host; ABI.md forbids depending on it.
//
// A memoized key costs a lookup: ~40–60 ns and no allocation here
// (BenchmarkKeyMemoized, TestPluginKeyAllocs), against 3–40 µs for a guest
// call. The response and miss hooks run only on misses and are not
// memoized.
package wasm
