package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/compress"
	"github.com/edgecache/edgecache/policies"
)

// Compression
//
// A compressible response the origin sent without a coding is stored as
// it came, with an internal field, hdrCodings, that names the codings of
// the route's compress block (internal/compress) as pending. Decoding the
// entry (memo.go) builds its representations as sibling views of the
// entry, each with its own pre-built header (Content-Encoding,
// Content-Length, ETag, Vary: Accept-Encoding); a hit only picks one
// (view.represent, policies.PreferredOf: a scan of Accept-Encoding) and
// writes it. A pending coding is encoded from the identity body the first
// time a request picks it (codings.produce), once per decoded entry, so
// once per gateway while the entry's view is memoized; a client that
// sends no Accept-Encoding costs no encoding at all. The coding is not
// written back to the shard (RATIONALE.md, "Compression").
//
// Entries filled by gateways before lazy codings hold the codings' bodies
// one after another, the identity body after them when it is small
// (compress.StoreIdentityBelow): those are still served, their large
// identity body decoded from the fastest-decoding coding the first time a
// client needs it.
//
// Each coding has its own entity tag: the origin's, suffixed with the
// coding inside the quotes ("abc" → "abc-br"; a weak one stays weak), as
// Apache's mod_deflate does. nginx weakens the tag instead, but then every
// coding shares one validator, and a strong one is what a Range or an
// If-Match on a coded body needs. If-None-Match matches only the tag of
// the coding served: a 304 for a body the client does not hold would make
// it keep the wrong one.
//
// The entry is stored without Accept-Encoding in its Vary (the entry
// answers every coding itself, so it is not a variant of it), and each
// representation adds Vary: Accept-Encoding back.

// hdrCodings is the internal field of an entry the fill compressed: one
// value per body, "<coding> <offset> <length>", in the server's order of
// preference, identity last ("identity - <length>" when it is decoded on
// demand instead of stored; "<coding> + 0" for a coding not stored, made
// from the identity body when a client first picks it). stripInternal
// removes it from origin responses.
const hdrCodings = "Edgecache-Codings"

// pendingOffset is the offset an hdrCodings value gives a coding the
// entry does not hold.
const pendingOffset = "+"

// EncodeInlineMax is the largest identity body a request encodes into a
// pending coding itself (and the requests that pick it meanwhile wait
// for). A larger one is encoded in the background, once, and served as
// identity until it is done: a megabyte at brotli 6 takes tens of
// milliseconds, more than a hit should wait, while 64 KiB (the small
// brotli window, compress.BrotliSmallWindowBits) takes about a
// millisecond.
const EncodeInlineMax = 64 << 10

// maxDecodedBody bounds the identity body decoded from a stored coding,
// whatever the entry claims: the fill stores nothing larger than a
// route's max_body_bytes, and a value that says otherwise is not ours.
const maxDecodedBody = 1 << 30

// errCodings is returned for an hdrCodings field that does not describe
// the entry's body.
var errCodings = errors.New("gateway: bad " + hdrCodings + " field")

// compression is a route's compress block as the fill applies it; nil
// when compression is disabled.
type compression struct {
	types    *compress.Types
	codings  []compress.Coding // the route's, in preference order (made on demand)
	names    []string          // their names, the same order (codings.have of a fill)
	pending  []string          // their hdrCodings values, all pending
	minBytes int
}

func newCompression(c config.Compress) *compression {
	if c.Disabled || len(c.Codings) == 0 {
		return nil
	}
	cp := &compression{types: compress.NewTypes(c.Types), minBytes: c.MinBytes}
	for _, name := range c.Codings {
		if cd, ok := codingNamed(strings.ToLower(strings.TrimSpace(name))); ok && cd != compress.Identity && !slices.Contains(cp.codings, cd) {
			cp.codings = append(cp.codings, cd)
			cp.names = append(cp.names, cd.String())
			cp.pending = append(cp.pending, cd.String()+" "+pendingOffset+" 0")
		}
	}
	cp.codings, cp.names, cp.pending = slices.Clip(cp.codings), slices.Clip(cp.names), slices.Clip(cp.pending)
	return cp
}

func codingNamed(name string) (compress.Coding, bool) {
	for _, c := range [...]compress.Coding{compress.Brotli, compress.Zstd, compress.Gzip, compress.Identity} {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}

// compress marks f for the store when the route compresses it: f's
// header gains hdrCodings, naming every coding of the route as pending
// (encoded from the identity body when a client first picks it, see
// produce) and the identity body as stored, and loses Accept-Encoding
// from its Vary; f.coded is the representations its clients are answered
// with. Nothing is encoded here: most clients of an API edge send no
// Accept-Encoding, and a fill that encoded every coding spent a fifth of
// a miss's CPU on bodies nobody asked for. An entry that was compressed
// already (a 304 revalidated it: recode) is left as it is.
func (fl *fill) compress(f *fetched) {
	c := fl.rt.compress
	if c == nil || f.coded != nil || len(c.codings) == 0 || !c.applies(f) {
		return
	}
	f.header, f.coded = c.mark(f.header, f.body)
}

// mark is the stored header of an entry whose codings are all pending
// and whose identity body is the stored body, and the codings
// parseCodings reads back from that header and body, built without
// writing the field out and reading it back: a fill made them by
// parsing, a tenth of a miss's allocations (TestMarkParses holds the two
// to the same result).
func (c *compression) mark(header http.Header, body []byte) (http.Header, *codings) {
	n := len(body)
	h := withFields(header, 1)
	h[hdrCodings] = append(c.pending[:len(c.pending):len(c.pending)], "identity 0 "+strconv.Itoa(n))
	dropVaryCoding(h)
	base := withFields(h, 0)
	delete(base, hdrCodings)
	delete(base, hdrContentLength)
	etag := base.Get("Etag")
	cd := &codings{have: c.names, order: c.codings, hdr: base, tag: etag}
	for _, x := range c.codings {
		cd.pending[x] = true
	}
	cd.reps[compress.Identity] = rep{header: repHeader(base, compress.Identity, n, etag), body: body[:n:n], etag: etag}
	return h, cd
}

// applies reports whether f is stored compressed: a full response with a
// body of at least min_bytes and a compressible type, sent without a
// coding, and not marked no-transform (RFC 9110 §7.7, RFC 9111 §5.2.2.6).
func (c *compression) applies(f *fetched) bool {
	return len(f.body) > 0 && len(f.body) >= c.minBytes && c.appliesHead(f)
}

// appliesHead is applies on f's status and header alone: what a
// streaming fill knows before its body ends.
func (c *compression) appliesHead(f *fetched) bool {
	h := f.header
	switch {
	case f.status < 200 || f.status == http.StatusNoContent || f.status == http.StatusPartialContent || f.status == http.StatusNotModified:
		return false
	case len(h[hdrCodings]) > 0 || len(h["Content-Range"]) > 0:
		return false
	}
	if coding, ok := policies.VariantCoding(h["Content-Encoding"]); !ok || coding != "" {
		return false // the origin's coding: stored as it came
	}
	if ct := h["Content-Type"]; len(ct) == 0 || !c.types.Compressible(ct[0]) {
		return false
	}
	return !policies.ParseCacheControl(h["Cache-Control"]).NoTransform
}

// streamHeader is the header a streaming fill's clients get: f's, with
// Vary: Accept-Encoding when the entry it stores will be compressed. They
// all get the identity body as it comes, but once stored the URL answers
// each Accept-Encoding with its coding, so a cache in front must not keep
// this one for every client without asking (RFC 9110 §12.5.5), and a
// client that compares it with the next response sees the same Vary.
func (fl *fill) streamHeader(f *fetched, contentLength int64) http.Header {
	c := fl.rt.compress
	if c == nil || len(c.codings) == 0 || contentLength >= 0 && contentLength < int64(c.minBytes) || !c.appliesHead(f) {
		return f.header
	}
	h := f.header.Clone()
	addVaryCoding(h)
	return h
}

// addVaryCoding adds Accept-Encoding to h's Vary unless it is there.
func addVaryCoding(h http.Header) {
	if !variesOnCoding(varyNames(h["Vary"])) {
		h["Vary"] = append(slices.Clip(h["Vary"]), "Accept-Encoding")
	}
}

// encode makes the stored header and body of an entry with every coding
// stored, as gateways before lazy codings (compress) filled them, which
// parseCodings still reads; false when no coding is smaller than body.
func (c *compression) encode(header http.Header, body []byte) (http.Header, []byte, bool) {
	var blob []byte
	index := make([]string, 0, len(c.codings)+1)
	for _, cd := range c.codings {
		off := len(blob)
		out, err := compress.Encode(blob, cd, body)
		if err != nil || len(out)-off >= len(body) {
			blob = out[:off] // not worth it (or failed): not stored in this coding
			continue
		}
		blob = out
		index = append(index, cd.String()+" "+strconv.Itoa(off)+" "+strconv.Itoa(len(blob)-off))
	}
	if len(index) == 0 {
		return nil, nil, false
	}
	if len(body) < compress.StoreIdentityBelow {
		index = append(index, "identity "+strconv.Itoa(len(blob))+" "+strconv.Itoa(len(body)))
		blob = append(blob, body...)
	} else {
		index = append(index, "identity - "+strconv.Itoa(len(body)))
	}
	h := header.Clone()
	h[hdrCodings] = index
	dropVaryCoding(h)
	return h, blob, true
}

// recode is the 304 revalidation of a compressed entry: f holds its
// stored bodies and the merged fields, and its clients get the coding
// each accepts, with the 304's fields.
func (fl *fill) recode(f *fetched) {
	if len(f.header[hdrCodings]) == 0 {
		return
	}
	dropVaryCoding(f.header)
	coded, err := parseCodings(f.header, f.body)
	if err != nil {
		return
	}
	if s := fl.stale.coded; s != nil && !s.lazy {
		coded.reps[compress.Identity].body, coded.lazy = s.reps[compress.Identity].body, false
	}
	f.coded = coded
}

// dropVaryCoding removes Accept-Encoding from h's Vary (the
// representations add it back).
func dropVaryCoding(h http.Header) {
	vals, ok := h["Vary"]
	if !ok {
		return
	}
	var kept []string
	for _, v := range vals {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !strings.EqualFold(name, "Accept-Encoding") {
				kept = append(kept, name)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Vary")
		return
	}
	h["Vary"] = []string{strings.Join(kept, ", ")}
}

// codings are the representations of a compressed entry, made once when
// it is decoded (or filled) and shared by every request that uses it.
type codings struct {
	have  []string                 // the stored codings' names, in preference order (for policies.PreferredOf)
	order []compress.Coding        // the same codings
	reps  [compress.Brotli + 1]rep // by coding
	// The identity body is not stored (lazy): it is decoded from src, at
	// most limit bytes, once (see identity).
	lazy  bool
	src   compress.Coding
	limit int64
	once  sync.Once

	// Pending codings are not stored: each is encoded from the identity
	// body the first time a request picks it (produce), at most once per
	// codings (made), and served from then on; ready says it is done
	// and smaller than the identity body.
	pending [compress.Brotli + 1]bool
	ready   [compress.Brotli + 1]atomic.Bool
	started [compress.Brotli + 1]atomic.Bool // a background encode was started
	made    [compress.Brotli + 1]sync.Once
	hdr     http.Header // the representations' common fields (repHeader's base)
	tag     string      // the origin's entity tag

	// For an entry's view (bind): one sibling view per representation,
	// the identity one made with the body.
	views [compress.Brotli + 1]*view
	base  *view

	// The last few single-line Accept-Encoding values picked for, with
	// their choices: clients send the same few values, so a hot entry
	// parses each once (and allocates only when a new one displaces one).
	recent [recentCodings]atomic.Pointer[aeChoice]
	next   atomic.Uint32 // the slot the next new value takes
}

// recentCodings is how many Accept-Encoding values an entry remembers:
// browsers, curl and CDNs in front between them send a handful.
const recentCodings = 4

// aeChoice is a codings' memo of one Accept-Encoding value's pick.
type aeChoice struct {
	ae string
	cd compress.Coding
}

// rep is one representation: what a response in its coding carries.
type rep struct {
	header http.Header // canonical keys, Content-Length included
	fields []byte      // header serialized for the fast path, or nil
	body   []byte
	etag   string
}

// parseCodings reads the hdrCodings field of header against body and
// builds each representation's header.
func parseCodings(header http.Header, body []byte) (*codings, error) {
	base := header.Clone()
	delete(base, hdrCodings)
	delete(base, hdrContentLength)
	c := &codings{}
	etag := base.Get("Etag")
	for _, v := range header[hdrCodings] {
		f := strings.Fields(v)
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: %q", errCodings, v)
		}
		cd, ok := codingNamed(f[0])
		n, err := strconv.Atoi(f[2])
		if !ok || err != nil || n < 0 || n > maxDecodedBody || c.reps[cd].header != nil || c.pending[cd] {
			return nil, fmt.Errorf("%w: %q", errCodings, v)
		}
		if f[1] == pendingOffset && cd != compress.Identity {
			c.pending[cd] = true
			c.have, c.order = append(c.have, cd.String()), append(c.order, cd)
			continue
		}
		var b []byte
		if f[1] == "-" && cd == compress.Identity {
			c.lazy, c.limit = true, int64(n)
		} else if off, err := strconv.Atoi(f[1]); err != nil || off < 0 || off > len(body) || n > len(body)-off {
			return nil, fmt.Errorf("%w: %q", errCodings, v)
		} else {
			b = body[off : off+n : off+n]
		}
		if cd != compress.Identity {
			c.have, c.order = append(c.have, cd.String()), append(c.order, cd)
		}
		c.reps[cd] = rep{header: repHeader(base, cd, n, etag), body: b, etag: codedETag(etag, cd)}
	}
	if c.reps[compress.Identity].header == nil || len(c.order) == 0 {
		return nil, fmt.Errorf("%w: no identity or no coding", errCodings)
	}
	c.hdr, c.tag = base, etag
	if c.lazy {
		c.src = compress.Identity
		for _, cd := range [...]compress.Coding{compress.Brotli, compress.Gzip, compress.Zstd} { // fastest to decode last
			if c.reps[cd].header != nil {
				c.src = cd
			}
		}
		if c.src == compress.Identity { // every coding pending: nothing to decode the identity body from
			return nil, fmt.Errorf("%w: identity neither stored nor coded", errCodings)
		}
	}
	return c, nil
}

// repHeader is the header of base's representation in coding cd with an
// n-byte body.
func repHeader(base http.Header, cd compress.Coding, n int, etag string) http.Header {
	h := withFields(base, 4)
	if cd != compress.Identity {
		h["Content-Encoding"] = []string{cd.String()}
	}
	h[hdrContentLength] = []string{strconv.Itoa(n)}
	if etag != "" {
		h["Etag"] = []string{codedETag(etag, cd)}
	}
	addVaryCoding(h)
	return h
}

// withFields is a copy of h with room for more fields. The copy shares
// h's values: the headers of entries and representations are built once
// and never written in place (a field is replaced whole), so a deep
// Clone would only cost a miss its allocations.
func withFields(h http.Header, more int) http.Header {
	c := make(http.Header, len(h)+more)
	maps.Copy(c, h)
	return c
}

// codedETag is the entity tag of the representation in cd of a response
// whose tag is etag: the coding suffixed inside the quotes.
func codedETag(etag string, cd compress.Coding) string {
	if etag == "" || cd == compress.Identity {
		return etag
	}
	if strings.HasSuffix(etag, `"`) && len(etag) >= 2 {
		return etag[:len(etag)-1] + "-" + cd.String() + `"`
	}
	return etag + "-" + cd.String()
}

// pick returns the representation for a request with Accept-Encoding ae.
func (c *codings) pick(ae []string) (compress.Coding, *rep) {
	if len(ae) == 0 {
		return compress.Identity, c.identity() // no Accept-Encoding: what wrk and most bots send
	}
	if len(ae) != 1 {
		cd := c.serves(c.choose(ae))
		return cd, c.rep(cd)
	}
	for i := range c.recent {
		if m := c.recent[i].Load(); m != nil && m.ae == ae[0] {
			cd := c.serves(m.cd)
			return cd, c.rep(cd)
		}
	}
	cd := c.choose(ae)
	// A copy: the request's strings are not the entry's to keep (internal/h1).
	c.recent[(c.next.Add(1)-1)%recentCodings].Store(&aeChoice{strings.Clone(ae[0]), cd})
	cd = c.serves(cd)
	return cd, c.rep(cd)
}

// serves is the coding a request that picked cd is served: cd, once its
// representation exists (a pending one is produced first), else identity.
// It does not allocate once cd is made.
func (c *codings) serves(cd compress.Coding) compress.Coding {
	if !c.pending[cd] || c.ready[cd].Load() {
		return cd
	}
	return c.produce(cd)
}

// produce makes the pending coding cd, once. A body up to
// EncodeInlineMax is encoded by the request that picked it, and the
// requests that pick it meanwhile wait for it (sync.Once): they would
// otherwise get identity, bigger on the wire, for the millisecond it
// takes, and a later request the coding. A larger body is encoded in the
// background and served as identity until it is done, so no request waits
// for a long encode. A coding that is not smaller than the identity body
// is never ready: its requests get identity.
func (c *codings) produce(cd compress.Coding) compress.Coding {
	if len(c.reps[compress.Identity].body) > EncodeInlineMax {
		if c.started[cd].CompareAndSwap(false, true) {
			go c.made[cd].Do(func() { c.encode(cd) })
		}
	} else {
		c.made[cd].Do(func() { c.encode(cd) })
	}
	if c.ready[cd].Load() {
		return cd
	}
	return compress.Identity
}

// encode makes the representation of the pending coding cd from the
// identity body, and its view when c is an entry's (bind).
func (c *codings) encode(cd compress.Coding) {
	id := c.reps[compress.Identity].body
	out, err := compress.Encode(nil, cd, id)
	if err != nil || len(out) >= len(id) {
		return // not worth it (or failed): identity serves cd's requests
	}
	if cap(out)-len(out) > len(out)/8 {
		out = bytes.Clone(out) // the encoder's buffer grew by doubling: keep what the body needs
	}
	r := &c.reps[cd]
	*r = rep{header: repHeader(c.hdr, cd, len(out), c.tag), body: out, etag: codedETag(c.tag, cd)}
	if v := c.base; v != nil {
		c.views[cd] = v.sibling(r, true)
	}
	c.ready[cd].Store(true)
}

// choose is the stored coding a request with Accept-Encoding ae prefers.
func (c *codings) choose(ae []string) compress.Coding {
	name := policies.PreferredOf(ae, c.have)
	for i, n := range c.have {
		if n == name {
			return c.order[i]
		}
	}
	return compress.Identity
}

// rep is the representation in coding cd.
func (c *codings) rep(cd compress.Coding) *rep {
	if cd == compress.Identity {
		return c.identity()
	}
	return &c.reps[cd]
}

// identity returns the identity representation, decoding its body the
// first time when it is not stored.
func (c *codings) identity() *rep {
	if c.lazy {
		c.once.Do(c.decode)
	}
	return &c.reps[compress.Identity]
}

// decode makes the identity body from the src coding (once). A stored
// body that does not decode is a damaged value: its identity
// representation answers 502 rather than a body nobody can trust.
func (c *codings) decode() {
	id := &c.reps[compress.Identity]
	body, err := compress.Decode(nil, c.src, c.reps[c.src].body, c.limit)
	if err != nil || int64(len(body)) != c.limit {
		id.header = http.Header{"Content-Type": textPlain, hdrContentLength: {strconv.Itoa(len(undecodable))}, "Cache-Control": {"no-store"}}
		id.body, id.etag = undecodable, ""
	} else {
		id.body = body
	}
	if v := c.base; v != nil {
		c.views[compress.Identity] = v.sibling(id, err == nil)
	}
}

var undecodable = []byte("edgecache: stored body does not decode\n")

// bind makes the sibling views of v, a compressed entry, one per
// representation (the identity one when its body is decoded).
func (c *codings) bind(v *view) {
	c.base = v
	for _, cd := range c.order {
		if !c.pending[cd] {
			c.views[cd] = v.sibling(&c.reps[cd], true)
		}
	}
	if !c.lazy {
		c.views[compress.Identity] = v.sibling(&c.reps[compress.Identity], true)
	}
}

// sibling is v served as representation r. ok false: r is the 502 of a
// body that does not decode.
func (v *view) sibling(r *rep, ok bool) *view {
	s := *v
	s.coded, s.header, s.body, s.etag = nil, r.header, r.body, r.etag
	if !ok {
		s.status, s.lastMod = http.StatusBadGateway, ""
	}
	s.fields, s.lastRange, s.list = nil, new(atomic.Pointer[rangeHeader]), fieldList(r.header)
	if v.fields != nil {
		s.serialize(r.header) // memo.go
	}
	r.fields = s.fields
	return &s
}

// represent returns the view to serve for a request with Accept-Encoding
// ae: v itself, or for a compressed entry the representation of the
// coding the request prefers. It does not allocate (decoding a lazy
// identity body the first time aside).
func (v *view) represent(ae []string) *view {
	c := v.coded
	if c == nil {
		return v
	}
	cd, _ := c.pick(ae)
	return c.views[cd]
}

// represent returns f as the representation a request with
// Accept-Encoding ae gets: f itself when it is not compressed.
func (f *fetched) represent(ae []string) *fetched {
	c := f.coded
	if c == nil {
		return f
	}
	_, r := c.pick(ae)
	cp := *f
	cp.header, cp.body, cp.etag = r.header, r.body, r.etag
	return &cp
}
