package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestMergeDataSegments instantiates a module as built and as merged
// (without running any of its code) and compares their memories byte for
// byte; modules the merge must not touch come back unchanged.
func TestMergeDataSegments(t *testing.T) {
	goMod, err := os.ReadFile("../plugins/testdata/examples/go-stripparams.wasm")
	if err != nil {
		t.Fatal(err)
	}
	merged := mergeDataSegments(goMod)
	before, _ := readDataSegments(dataPayload(t, goMod))
	after, _ := readDataSegments(dataPayload(t, merged))
	if len(before) < 1000 || len(after) > 16 {
		t.Fatalf("segments: %d before, %d after; want thousands, then a few", len(before), len(after))
	}
	if a, b := memoryAfterInstantiate(t, goMod), memoryAfterInstantiate(t, merged); !bytes.Equal(a, b) {
		t.Fatalf("memories differ (%d and %d bytes)", len(a), len(b))
	}

	// A module with one memory and n one-byte segments at off, off+step, …
	// (and extra sections or flags as given).
	module := func(n int, off, step uint32, flags byte, extra ...byte) []byte {
		var data []byte
		data = append(data, byte(n))
		for i := range n {
			data = append(data, flags, opI32Const)
			data = appendSLEB32(data, int32(off+uint32(i)*step))
			data = append(data, opEnd, 1, byte(i+1))
		}
		m := []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01") // memory: min 1 page
		m = append(m, extra...)
		m = binary.AppendUvarint(append(m, sectionData), uint64(len(data)))
		return append(m, data...)
	}
	cases := []struct {
		name  string
		wasm  []byte
		merge bool
	}{
		{"many segments", module(70, 16, 2, 0), true},
		{"too few to bother", module(10, 16, 2, 0), false},
		{"overlapping", module(70, 16, 0, 0), false},
		{"more zeros than data", module(70, 16, 4000, 0), false},
		{"passive", module(70, 16, 2, 1), false},
		{"a data count section", module(70, 16, 2, 0, sectionDataCount, 1, 70), false},
		{"not wasm", []byte("not a module at all"), false},
		{"truncated", module(70, 16, 2, 0)[:100], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mergeDataSegments(tc.wasm)
			if changed := !bytes.Equal(out, tc.wasm); changed != tc.merge {
				t.Fatalf("changed %v, want %v", changed, tc.merge)
			}
			if tc.merge && !bytes.Equal(memoryAfterInstantiate(t, tc.wasm), memoryAfterInstantiate(t, out)) {
				t.Fatal("memories differ")
			}
		})
	}
}

// dataPayload returns the data section's payload of wasm.
func dataPayload(t *testing.T, wasm []byte) []byte {
	t.Helper()
	for pos := 8; pos < len(wasm); {
		size, n := binary.Uvarint(wasm[pos+1:])
		start := pos + 1 + n
		if wasm[pos] == sectionData {
			return wasm[start : start+int(size)]
		}
		pos = start + int(size)
	}
	t.Fatal("no data section")
	return nil
}

// memoryAfterInstantiate instantiates wasm with the host's imports,
// running no start function, and returns a copy of its memory.
func memoryAfterInstantiate(t *testing.T, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if err := instantiateImports(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	mem, ok := mod.Memory().Read(0, mod.Memory().Size())
	if !ok {
		t.Fatal("memory not readable")
	}
	return bytes.Clone(mem)
}

// FuzzMergeDataSegments: whatever the bytes, the merge returns them
// unchanged or a module whose data section it reads back, never panics,
// and never grows a module past twice its size.
func FuzzMergeDataSegments(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0b\x07\x01\x00\x41\x10\x0b\x01\x01"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out := mergeDataSegments(wasm)
		if bytes.Equal(out, wasm) {
			return
		}
		if len(out) > 2*len(wasm)+DataMergeGap {
			t.Fatalf("%d bytes became %d", len(wasm), len(out))
		}
		if _, ok := readDataSegments(dataPayload(t, out)); !ok {
			t.Fatal("the merged data section does not read back")
		}
	})
}
