// Package edgecache is the Go SDK for edgecache policy plugins: it hides
// the buffer protocol of the plugin ABI (plugins/ABI.md) behind plain
// calls such as Header("Accept") and SetTTL(5*time.Minute).
//
// A plugin is a main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// It exports the hooks it implements with //go:wasmexport; a hook it does
// not export is the built-in policy's job. Each hook returns OK to apply
// what it set, or Decline to let the built-in policy decide:
//
//	package main
//
//	import edgecache "github.com/edgecache/edgecache/plugins/sdk/go"
//
//	func main() {}
//
//	//go:wasmexport key
//	func key() int32 {
//		edgecache.SetKey(edgecache.Host() + edgecache.Path())
//		return edgecache.OK
//	}
//
// This package exports the ABI version (edgecache_abi_v1) and the init
// hook, which runs the function given to OnInit (from a Go init function)
// with the plugin's config.
//
// Go guests are the heaviest: about 2 MiB of memory and ~10 ms to start
// per instance, and a hook call costs more than in C, Rust or
// AssemblyScript. The host memoizes the key hook, so this matters on
// misses only. Do not read time.Now or math/rand in a key hook: a call
// that reads the wall clock or randomness is not memoized.
package edgecache
