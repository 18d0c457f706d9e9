package wasm_test

import (
	"encoding/binary"
	"errors"
	"net/http"
	"testing"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

// FuzzHostFunctions feeds garbage pointers, lengths and values to the host
// functions: wat/fuzz.wasm calls the function picked by the input's first
// byte with the four little-endian i32 that follow (see the .wat). Each
// call must succeed or fail with an ABI fault or a trap — never crash the
// host or write outside the guest — and the next call must work.
func FuzzHostFunctions(f *testing.F) {
	seed := func(fn byte, args ...uint32) []byte {
		b := make([]byte, 20)
		b[0] = fn
		for i, a := range args {
			binary.LittleEndian.PutUint32(b[4+4*i:], a)
		}
		return b
	}
	// More seeds live in testdata/fuzz/FuzzHostFunctions.
	f.Add(seed(2, 1024, 256))                // get_path into a valid buffer
	f.Add(seed(2, 65530, 100))               // get_path past the end of memory
	f.Add(seed(0, 256, 6, 1024, 0xffffffff)) // get_header, limit -1
	f.Add(seed(6, 0, 0x7fffffff))            // set_key, huge length
	f.Add(seed(7, 1024, 4096))               // add_key_part at the limit
	f.Add(seed(12, 99, 0xfffffff0, 0xffff))  // log, bad level and pointer
	f.Add(seed(9, 0xffffffff))               // set_ttl from the key hook
	f.Add(seed(5, 256, 6, 0, 64))            // get_response_header from the key hook
	f.Add([]byte{})                          // no header at all

	h := newHost(f)
	p := load(f, h, "wat/fuzz.wasm", hook.PluginOptions{PoolSize: 2, MemoEntries: -1})
	benign := &hook.Request{Method: "GET", Path: "/ok", Header: http.Header{"X-Fuzz": {string(seed(1, 1024, 64))}}}

	f.Fuzz(func(t *testing.T, in []byte) {
		r := &hook.Request{Method: "GET", Scheme: "https", Host: "fuzz.example", Path: "/fuzz", RawQuery: "a=1", Header: http.Header{}}
		if len(in) > 0 {
			r.Header["X-Fuzz"] = []string{string(in)}
		}
		out, act, err := p.AppendKey(make([]byte, 0, 8), r)
		switch {
		case err == nil:
			if act == hook.KeyDefault && len(out) != 0 {
				t.Fatalf("KeyDefault with %d bytes appended", len(out))
			}
			if len(out) > wasm.MaxKeyBytes {
				t.Fatalf("key of %d bytes", len(out))
			}
		case errors.Is(err, wasm.ErrABI), errors.Is(err, wasm.ErrTrap):
		default:
			t.Fatalf("err = %v, want nil, ErrABI or ErrTrap", err)
		}
		if _, _, err := p.AppendKey(nil, benign); err != nil {
			t.Fatalf("a benign call after the fuzzed one: %v", err)
		}
	})
}
