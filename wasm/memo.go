package wasm

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/edgecache/edgecache/hook"
)

// DefaultMemoEntries bounds the key memo of a plugin when
// PluginOptions.MemoEntries is zero: about 1–2 MiB for typical keys.
const DefaultMemoEntries = 8192

// maxMemoHeaders is how many distinct request headers a key hook may read
// and still be memoized; a plugin that reads more is never memoized.
const maxMemoHeaders = 32

const memoShards = 16

// readSet is the set of request fields a plugin's key hook has ever read.
// It only grows; each growth is a new immutable readSet with gen+1, and
// headers keep their indexes across generations.
type readSet struct {
	gen     uint64
	fields  uint8    // fieldMethod | fieldScheme | …
	headers []string // canonical names, in the order first read
}

// memoEntry is one memoized key: the values of the read set's fields it was
// computed from (encoded by appendValues) and the result. Immutable.
type memoEntry struct {
	gen  uint64
	vals []byte
	act  hook.KeyAction
	key  []byte
}

// memo maps the values of the fields in the read set to key results. A
// lookup hashes the request's values (no allocation), then compares them
// with the entry's, so a hash collision is a miss, never a wrong key.
type memo struct {
	seed     maphash.Seed
	perShard int
	set      atomic.Pointer[readSet]
	disabled atomic.Bool // read more headers than maxMemoHeaders
	mu       sync.Mutex  // serializes growth of the read set
	shards   [memoShards]memoShard
}

type memoShard struct {
	mu sync.RWMutex
	m  map[uint64]*memoEntry
	_  [40]byte // keep shards on separate cache lines
}

func newMemo(entries int) *memo {
	m := &memo{seed: maphash.MakeSeed(), perShard: max(1, entries/memoShards)}
	m.set.Store(&readSet{gen: 1})
	for i := range m.shards {
		m.shards[i].m = make(map[uint64]*memoEntry)
	}
	return m
}

// lookup appends the memoized key for r to dst.
func (m *memo) lookup(dst []byte, r *hook.Request) ([]byte, hook.KeyAction, bool) {
	if m.disabled.Load() {
		return dst, 0, false
	}
	rs := m.set.Load()
	h := hashValues(m.seed, rs, r)
	sh := &m.shards[h%memoShards]
	sh.mu.RLock()
	e := sh.m[h]
	sh.mu.RUnlock()
	if e == nil || e.gen != rs.gen || !matchValues(e.vals, rs, r) {
		return dst, 0, false
	}
	return append(dst, e.key...), e.act, true
}

// record notes what a key hook call read (fields, and the header names
// that the read set at the call's start did not have: sets only grow, so
// the others are still in it), grows the read set if needed, and stores
// the result. It is called only for a call that succeeded without reading
// the clock or randomness.
func (m *memo) record(fields uint8, newHdrs []string, r *hook.Request, act hook.KeyAction, key []byte) {
	if m.disabled.Load() {
		return
	}
	rs := m.set.Load()
	if !covers(rs, fields, newHdrs) {
		rs = m.grow(fields, newHdrs)
		if rs == nil {
			return
		}
	}
	e := &memoEntry{gen: rs.gen, vals: appendValues(nil, rs, r), act: act, key: append([]byte(nil), key...)}
	h := hashValues(m.seed, rs, r)
	sh := &m.shards[h%memoShards]
	sh.mu.Lock()
	if len(sh.m) >= m.perShard {
		for k := range sh.m { // Go randomizes the start: random eviction
			delete(sh.m, k)
			break
		}
	}
	sh.m[h] = e
	sh.mu.Unlock()
}

func covers(rs *readSet, fields uint8, newHdrs []string) bool {
	if fields&^rs.fields != 0 {
		return false
	}
	for _, n := range newHdrs {
		if rs.index(n) < 0 {
			return false
		}
	}
	return true
}

// grow publishes the union of the read set and what a call read, and
// flushes the memo: entries keyed by the smaller set are unreachable.
func (m *memo) grow(fields uint8, newHdrs []string) *readSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := m.set.Load()
	if covers(rs, fields, newHdrs) {
		return rs
	}
	next := &readSet{gen: rs.gen + 1, fields: rs.fields | fields, headers: append([]string(nil), rs.headers...)}
	for _, n := range newHdrs {
		if next.index(n) < 0 {
			next.headers = append(next.headers, n)
		}
	}
	if len(next.headers) > maxMemoHeaders {
		m.disabled.Store(true)
	}
	m.set.Store(next)
	m.flush()
	if m.disabled.Load() {
		return nil
	}
	return next
}

func (m *memo) flush() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

func (m *memo) len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (rs *readSet) index(name string) int {
	for i, h := range rs.headers {
		if h == name {
			return i
		}
	}
	return -1
}

// indexBytes is index for a name in a scratch buffer, without allocating.
func (rs *readSet) indexBytes(name []byte) int {
	for i, h := range rs.headers {
		if h == string(name) {
			return i
		}
	}
	return -1
}

func field(r *hook.Request, f uint8) string {
	switch f {
	case fieldMethod:
		return r.Method
	case fieldScheme:
		return r.Scheme
	case fieldHost:
		return r.Host
	case fieldPath:
		return r.Path
	default:
		return r.RawQuery
	}
}

// hashValues hashes the values of the read set's fields in r.
func hashValues(seed maphash.Seed, rs *readSet, r *hook.Request) uint64 {
	h := rs.gen
	for fs := rs.fields; fs != 0; fs &= fs - 1 {
		f := uint8(1) << bits.TrailingZeros8(fs)
		h = mix(h, maphash.String(seed, field(r, f)))
	}
	for _, name := range rs.headers {
		vals := r.Header[name]
		h = mix(h, uint64(len(vals)))
		for _, v := range vals {
			h = mix(h, maphash.String(seed, v))
		}
	}
	return h
}

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// appendValues encodes the values of the read set's fields in r: each
// string as uvarint length and bytes, each header as uvarint count and its
// values.
func appendValues(b []byte, rs *readSet, r *hook.Request) []byte {
	for fs := rs.fields; fs != 0; fs &= fs - 1 {
		f := uint8(1) << bits.TrailingZeros8(fs)
		s := field(r, f)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, name := range rs.headers {
		vals := r.Header[name]
		b = binary.AppendUvarint(b, uint64(len(vals)))
		for _, v := range vals {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

// matchValues reports whether enc (from appendValues) equals r's values.
func matchValues(enc []byte, rs *readSet, r *hook.Request) bool {
	next := func(s string) bool {
		n, k := binary.Uvarint(enc)
		if k <= 0 || n != uint64(len(s)) || uint64(len(enc)-k) < n || string(enc[k:k+int(n)]) != s {
			return false
		}
		enc = enc[k+int(n):]
		return true
	}
	for fs := rs.fields; fs != 0; fs &= fs - 1 {
		if !next(field(r, uint8(1)<<bits.TrailingZeros8(fs))) {
			return false
		}
	}
	for _, name := range rs.headers {
		vals := r.Header[name]
		n, k := binary.Uvarint(enc)
		if k <= 0 || n != uint64(len(vals)) {
			return false
		}
		enc = enc[k:]
		for _, v := range vals {
			if !next(v) {
				return false
			}
		}
	}
	return len(enc) == 0
}
