package wasm

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// Go's linker splits a module's data at every run of ten or more zero
// bytes, so a small Go plugin has tens of thousands of data segments (the
// stripparams example: 37,151 for 0.9 MB of data). wazero keeps each
// segment as a struct, its bytes and its offset expression in separate
// allocations, and every instance a slice header per segment: ~5.5 MiB of
// Go heap for the compiled module and ~1 MiB per instance, for 0.9 MB of
// bytes. mergeDataSegments rewrites such a data section before compiling:
// segments closer than DataMergeGap are joined, the gap written as the
// zeros the memory already holds. A gap shorter than a page cannot cover a
// page of its own, so an instance touches no page it did not touch before.
//
// The rewrite applies only where it cannot change what the module does:
// every segment active, in memory 0, at an i32.const offset, no two
// overlapping (so the order in which they are written does not matter),
// and no data count section (without one the code cannot name a segment:
// memory.init and data.drop need it). Anything else, a module it cannot
// read included, is returned unchanged: wazero reports what is wrong with
// it.

// DataMergeGap is the largest run of zero bytes between two data segments
// that mergeDataSegments fills to join them: under a page, see above.
const DataMergeGap = 4096

// dataMergeMinSegments is the segment count below which a module is left
// alone: C, Rust and AssemblyScript modules have a handful.
const dataMergeMinSegments = 64

// WebAssembly section ids and opcodes read here.
const (
	sectionData      = 11
	sectionDataCount = 12
	opI32Const       = 0x41
	opEnd            = 0x0b
)

// dataSegment is an active data segment of memory 0.
type dataSegment struct {
	offset uint32
	init   []byte // a subslice of the module
}

// mergeDataSegments returns wasm with its data segments merged, or wasm
// itself when it does not apply (see above).
func mergeDataSegments(wasm []byte) []byte {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return wasm
	}
	// The data section: its id byte, and its payload's start and end.
	var dataID, dataStart, dataEnd int
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 || size > uint64(len(wasm)-pos-1-n) {
			return wasm
		}
		start := pos + 1 + n
		switch id {
		case sectionDataCount:
			return wasm
		case sectionData:
			dataID, dataStart, dataEnd = pos, start, start+int(size)
		}
		pos = start + int(size)
	}
	if dataEnd == 0 {
		return wasm
	}
	segs, ok := readDataSegments(wasm[dataStart:dataEnd])
	if !ok || len(segs) < dataMergeMinSegments {
		return wasm
	}
	merged, ok := mergeSegments(segs)
	if !ok {
		return wasm
	}
	payload := encodeDataSegments(merged)
	out := make([]byte, 0, len(wasm)-(dataEnd-dataStart)+len(payload)+binary.MaxVarintLen32)
	out = append(out, wasm[:dataID]...)
	out = append(out, sectionData)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	out = append(out, payload...)
	return append(out, wasm[dataEnd:]...)
}

// readDataSegments parses a data section's payload; ok is false unless
// every segment is of the kind mergeDataSegments handles.
func readDataSegments(p []byte) (segs []dataSegment, ok bool) {
	count, n := binary.Uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return nil, false
	}
	p = p[n:]
	segs = make([]dataSegment, 0, count)
	for range count {
		// flags 0: active, memory 0, an offset expression.
		if len(p) < 2 || p[0] != 0 || p[1] != opI32Const {
			return nil, false
		}
		off, n := readSLEB32(p[2:])
		if n == 0 {
			return nil, false
		}
		p = p[2+n:]
		if len(p) == 0 || p[0] != opEnd {
			return nil, false
		}
		size, n := binary.Uvarint(p[1:])
		if n <= 0 || size > uint64(len(p)-1-n) {
			return nil, false
		}
		p = p[1+n:]
		segs = append(segs, dataSegment{offset: uint32(off), init: p[:size]})
		p = p[size:]
	}
	return segs, len(p) == 0
}

// readSLEB32 reads a signed LEB128 i32 (at most 5 bytes); n is 0 when p
// does not start with one.
func readSLEB32(p []byte) (v int32, n int) {
	var x int64
	var shift uint
	for i := 0; i < len(p) && i < 5; i++ {
		b := p[i]
		x |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if b&0x40 != 0 {
				x |= -1 << shift
			}
			if x < -1<<31 || x >= 1<<31 {
				return 0, 0
			}
			return int32(x), i + 1
		}
	}
	return 0, 0
}

// mergeSegments sorts segs by offset and joins neighbours closer than
// DataMergeGap; ok is false when two segments overlap or one does not fit
// in 32 bits of address (instantiation fails on it; left to wazero), and
// when the zeros filled in would outweigh the data: one byte every 4 KiB
// must not make a small module allocate gigabytes here.
func mergeSegments(segs []dataSegment) (out []dataSegment, ok bool) {
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	var data, zeros uint64
	for i, s := range segs {
		end := uint64(s.offset) + uint64(len(s.init))
		if end > 1<<32 {
			return nil, false
		}
		data += uint64(len(s.init))
		if i > 0 {
			prevEnd := uint64(segs[i-1].offset) + uint64(len(segs[i-1].init))
			if prevEnd > uint64(s.offset) {
				return nil, false
			}
			if gap := uint64(s.offset) - prevEnd; gap < DataMergeGap {
				zeros += gap
			}
		}
	}
	if zeros > data {
		return nil, false
	}
	for i := 0; i < len(segs); {
		start := segs[i].offset
		end := uint64(start) + uint64(len(segs[i].init))
		j := i + 1
		for j < len(segs) && uint64(segs[j].offset)-end < DataMergeGap {
			end = uint64(segs[j].offset) + uint64(len(segs[j].init))
			j++
		}
		if j == i+1 {
			out = append(out, segs[i])
		} else {
			buf := make([]byte, end-uint64(start))
			for _, s := range segs[i:j] {
				copy(buf[s.offset-start:], s.init)
			}
			out = append(out, dataSegment{offset: start, init: buf})
		}
		i = j
	}
	return out, true
}

// encodeDataSegments encodes a data section's payload.
func encodeDataSegments(segs []dataSegment) []byte {
	size := binary.MaxVarintLen32
	for _, s := range segs {
		size += 2 + binary.MaxVarintLen32 + 1 + binary.MaxVarintLen32 + len(s.init)
	}
	p := make([]byte, 0, size)
	p = binary.AppendUvarint(p, uint64(len(segs)))
	for _, s := range segs {
		p = append(p, 0, opI32Const)
		p = appendSLEB32(p, int32(s.offset))
		p = append(p, opEnd)
		p = binary.AppendUvarint(p, uint64(len(s.init)))
		p = append(p, s.init...)
	}
	return p
}

// appendSLEB32 appends v as signed LEB128.
func appendSLEB32(p []byte, v int32) []byte {
	x := int64(v)
	for {
		b := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && b&0x40 == 0) || (x == -1 && b&0x40 != 0) {
			return append(p, b)
		}
		p = append(p, b|0x80)
	}
}
