package gateway

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/policies"
)

// memoShards spreads the memos' locks.
const memoShards = 64

// keyInterner turns key bytes into a string without allocating for keys
// seen before. valkey-go keeps the key string of an L1 entry, so it must
// be immutable: the pooled buffer the key is built in cannot be passed.
type keyInterner struct {
	seed   maphash.Seed
	limit  int // entries per shard before the shard is reset
	shards [memoShards]struct {
		mu sync.RWMutex
		m  map[string]string
	}
}

func newKeyInterner(maxKeys int) *keyInterner {
	in := &keyInterner{seed: maphash.MakeSeed(), limit: max(maxKeys/memoShards, 16)}
	for i := range in.shards {
		in.shards[i].m = make(map[string]string)
	}
	return in
}

func (in *keyInterner) intern(b []byte) string {
	sh := &in.shards[maphash.Bytes(in.seed, b)%memoShards]
	sh.mu.RLock()
	s, ok := sh.m[string(b)]
	sh.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	sh.mu.Lock()
	if len(sh.m) >= in.limit {
		clear(sh.m)
	}
	sh.m[s] = s
	sh.mu.Unlock()
	return s
}

// view is a stored entry decoded once and served many times. It keeps the
// raw bytes it was decoded from alive, so their address cannot be reused
// while the view is memoized. A view is never modified after decodeView,
// but for lastRange (ranges.go), swapped whole.
type view struct {
	raw        []byte
	status     int
	storedAt   int64       // unix ms
	freshUntil int64       // unix ms
	initialAge int64       // ms
	swr, sie   int64       // ms
	header     http.Header // canonical keys, Content-Length included
	list       []field     // header's fields as a list, for copying (copyHeader)
	fields     []byte      // header serialized for the fast path (h1.AppendField); nil if none may use it
	clAt       int         // where Content-Length starts in fields, the last field (a 206 has its own)
	hasDate    bool        // header has the origin's Date
	body       []byte
	etag       string
	lastMod    string
	tags       []string

	// From the stored Cache-Control, or the targeted field that decided
	// (targeted.go): whether the entry may be served stale at all, and
	// whether every use must be revalidated.
	mustRevalidate bool
	noCache        bool
	// withAuth: the entry may answer a request with Authorization (RFC
	// 9111 §3.5: public, s-maxage or must-revalidate).
	withAuth bool
	// hints are the Link fields sent as 103 Early Hints before the entry
	// (hints.go); nil for none.
	hints []string
	// contentCoding is the stored Content-Encoding ("" for none): a
	// request that does not accept it is not served this entry.
	contentCoding string

	// A Vary marker (see vary.go) names the request headers that select
	// the variant and the marker's id; it is not a response.
	varyNames []string
	varyID    string

	// coded is set on a compressed entry (encode.go): its representations,
	// one per coding; serving picks one (represent).
	coded *codings
	// lastRange is the field values of the last single range served from
	// this entry through a header map (ranges.go).
	lastRange *atomic.Pointer[rangeHeader]
}

// age returns the entry's age at now (unix ms), in ms.
func (v *view) age(now int64) int64 { return now - v.storedAt + v.initialAge }

// stored is what the serve decisions read of v (policies.Serve).
func (v *view) stored() policies.Stored {
	return policies.Stored{
		StoredAt: v.storedAt, FreshUntil: v.freshUntil, InitialAge: v.initialAge, SWR: v.swr, SIE: v.sie,
		NoCache: v.noCache, MustRevalidate: v.mustRevalidate,
	}
}

// viewMemo maps the address of cached bytes to their decoded view. The L1
// and the embedded store hand out the same bytes for every hit on an
// entry until it changes, so a hot entry is decoded once. It is bounded by
// the bytes of the entries it keeps alive.
//
// With the L1 off, bytes read from a shard are new on every read, though
// usually equal to the last ones read for the key: those views are
// remembered by key, and reused when the new bytes are equal (compared
// whole), so an L2 hit decodes nothing either. With the L1 on, a shard
// read is an L1 miss that the next read answers from the L1: nothing is
// remembered for it.
type viewMemo struct {
	limit  int // bytes per shard before the shard is reset
	shards [memoShards]memoShard[uintptr]
	seed   maphash.Seed
	byKeys [memoShards]memoShard[string]
}

// memoShard is one lock's share of a memo, bounded by the bytes of the
// entries its views keep alive.
type memoShard[K comparable] struct {
	mu    sync.RWMutex
	m     map[K]*view
	bytes int
}

func (sh *memoShard[K]) get(k K) *view {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[k]
}

// put remembers v under k, starting the shard over when it would pass
// limit.
func (sh *memoShard[K]) put(k K, v *view, limit int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.m[k]; old != nil {
		sh.bytes -= len(old.raw)
	}
	if sh.bytes+len(v.raw) > limit {
		clear(sh.m)
		sh.bytes = 0
	}
	sh.m[k] = v
	sh.bytes += len(v.raw)
}

func newViewMemo(maxBytes int) *viewMemo {
	vm := &viewMemo{limit: max(maxBytes/memoShards, 1<<16), seed: maphash.MakeSeed()}
	for i := range vm.shards {
		vm.shards[i].m = make(map[uintptr]*view)
		vm.byKeys[i].m = make(map[string]*view)
	}
	return vm
}

// get returns the view of raw, the entry of key, decoding it on first
// sight, or nil if raw is not a valid entry. fromL1 says raw will be
// handed out again as is (the L1's and the embedded store's bytes are);
// byKey, for bytes read from a shard with the L1 off, remembers the view
// by key. key must not change after the call (an interned key).
func (vm *viewMemo) get(key string, raw []byte, fromL1, byKey bool) *view {
	if len(raw) == 0 {
		return nil
	}
	if !fromL1 {
		if byKey {
			return vm.getByKey(key, raw)
		}
		return decodeView(raw)
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	sh := &vm.shards[(p>>4)%memoShards]
	if v := sh.get(p); v != nil && len(v.raw) == len(raw) {
		return v
	}
	v := decodeView(raw)
	if v != nil {
		sh.put(p, v, vm.limit)
	}
	return v
}

func (vm *viewMemo) getByKey(key string, raw []byte) *view {
	sh := &vm.byKeys[maphash.String(vm.seed, key)%memoShards]
	if v := sh.get(key); v != nil && bytes.Equal(v.raw, raw) {
		return v
	}
	v := decodeView(raw)
	if v != nil {
		sh.put(key, v, vm.limit)
	}
	return v
}

// serialize prepares the fields of h for the fast path's writer, with
// Content-Length last (a 206 writes its own: ranges.go).
func (v *view) serialize(h http.Header) {
	for k, vv := range h {
		if k != hdrContentLength {
			v.fields = h1.AppendField(v.fields, k, vv)
		}
	}
	v.clAt = len(v.fields)
	v.fields = h1.AppendField(v.fields, hdrContentLength, h[hdrContentLength])
	_, v.hasDate = h["Date"]
}

func decodeView(raw []byte) *view {
	var e entry.Entry
	if err := entry.Decode(raw, &e); err != nil {
		return nil
	}
	h := e.Header
	if h == nil {
		h = make(http.Header, 1)
	}
	v := &view{
		raw:        raw,
		status:     e.Status,
		storedAt:   e.StoredAt.UnixMilli(),
		freshUntil: e.FreshUntil.UnixMilli(),
		initialAge: e.InitialAge.Milliseconds(),
		swr:        e.StaleWhileRevalidate.Milliseconds(),
		sie:        e.StaleIfError.Milliseconds(),
		header:     h,
		body:       e.Body,
		etag:       e.ETag,
		lastMod:    e.LastModified,
		tags:       e.Tags,
		lastRange:  new(atomic.Pointer[rangeHeader]),
	}
	if id := h[hdrVaryMarker]; len(id) == 1 {
		v.varyID = id[0]
		v.varyNames = h["Vary"]
		return v
	}
	v.noCache, v.mustRevalidate, v.withAuth = reuse(h) // targeted.go
	if hints := h[hdrEarlyHints]; len(hints) > 0 {
		v.hints = hints // hints.go
		delete(h, hdrEarlyHints)
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 {
		v.contentCoding = strings.Join(ce, ",")
	}
	h[hdrContentLength] = []string{strconv.Itoa(len(e.Body))}
	if v.status == http.StatusOK {
		h["Accept-Ranges"] = acceptRangesBytes // ranges.go
	}
	if v.status >= 200 && v.status != http.StatusNoContent && v.status != http.StatusNotModified {
		v.serialize(h)
	}
	if len(h[hdrCodings]) > 0 { // compressible: representations per coding (encode.go)
		c, err := parseCodings(h, e.Body)
		if err != nil {
			return nil
		}
		v.coded = c
		c.bind(v)
	}
	v.list = fieldList(h)
	return v
}

// field is one of a view's header fields.
type field struct {
	k  string
	vv []string
}

// fieldList is h's fields as a list: a hit copies them into the
// response's header map without iterating a map (a quarter of the copy's
// cost).
func fieldList(h http.Header) []field {
	l := make([]field, 0, len(h))
	for k, vv := range h {
		l = append(l, field{k, vv})
	}
	return l
}

// copyHeader sets v's stored fields in h.
func (v *view) copyHeader(h http.Header) {
	for _, f := range v.list {
		h[f.k] = f.vv
	}
}
