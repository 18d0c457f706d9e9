package wasm

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/edgecache/edgecache/hook"
)

func memoReq(path string, hdr ...string) *hook.Request {
	r := &hook.Request{Method: "GET", Scheme: "https", Host: "h", Path: path, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestMemoGrowth(t *testing.T) {
	m := newMemo(64)
	r := memoReq("/a", "Accept", "text/html")
	if _, _, ok := m.lookup(nil, r); ok {
		t.Fatal("hit in an empty memo")
	}
	m.record(fieldPath, nil, r, hook.KeyReplace, []byte("k1"))
	if got, act, ok := m.lookup(nil, r); !ok || string(got) != "k1" || act != hook.KeyReplace {
		t.Fatalf("lookup after record: %q %v %v", got, act, ok)
	}
	if _, _, ok := m.lookup(nil, memoReq("/b", "Accept", "text/html")); ok {
		t.Fatal("hit for another path")
	}
	// Another header value is the same entry while Accept is not read.
	if _, _, ok := m.lookup(nil, memoReq("/a", "Accept", "image/png")); !ok {
		t.Fatal("miss for a field the hook never read")
	}
	// A call that read Accept grows the set and flushes the memo.
	gen := m.set.Load().gen
	m.record(fieldPath, []string{"Accept"}, r, hook.KeyReplace, []byte("k2"))
	if rs := m.set.Load(); rs.gen != gen+1 || rs.index("Accept") != 0 || m.len() != 1 {
		t.Fatalf("after growth: set %+v, %d entries", rs, m.len())
	}
	if _, _, ok := m.lookup(nil, memoReq("/a", "Accept", "image/png")); ok {
		t.Fatal("hit for another value of a header read")
	}
	if got, _, ok := m.lookup(nil, r); !ok || string(got) != "k2" {
		t.Fatalf("lookup: %q %v", got, ok)
	}
	// A field already in the set does not grow it.
	m.record(fieldPath, []string{"Accept"}, memoReq("/c", "Accept", "x"), hook.KeyDefault, nil)
	if m.set.Load().gen != gen+1 || m.len() != 2 {
		t.Fatalf("set grew for known fields: %+v, %d entries", m.set.Load(), m.len())
	}
}

// TestMemoVerifiesValues: entries are checked value by value, so a hash
// collision (forced here by planting an entry) is a miss, not a wrong key.
func TestMemoVerifiesValues(t *testing.T) {
	m := newMemo(64)
	a, b := memoReq("/aaaa"), memoReq("/bbbb")
	m.record(fieldPath, nil, a, hook.KeyReplace, []byte("ka"))
	rs := m.set.Load()
	hb := hashValues(m.seed, rs, b)
	sh := &m.shards[hb%memoShards]
	sh.mu.Lock()
	sh.m[hb] = &memoEntry{gen: rs.gen, vals: appendValues(nil, rs, a), act: hook.KeyReplace, key: []byte("ka")}
	sh.mu.Unlock()
	if got, _, ok := m.lookup(nil, b); ok {
		t.Fatalf("collision answered %q", got)
	}
	for _, tc := range []struct {
		x, y *hook.Request
		same bool
	}{
		{memoReq("/p", "A", "1"), memoReq("/p", "A", "1"), true},
		{memoReq("/p", "A", "1", "A", "2"), memoReq("/p", "A", "1, 2"), false},
		{memoReq("/p"), memoReq("/p", "A", ""), false},
		{memoReq("/p", "A", "12"), memoReq("/p", "A", "1", "A", "2"), false},
	} {
		rs := &readSet{gen: 1, fields: fieldPath, headers: []string{"A"}}
		if got := matchValues(appendValues(nil, rs, tc.x), rs, tc.y); got != tc.same {
			t.Errorf("match(%v, %v) = %v", tc.x.Header, tc.y.Header, got)
		}
	}
}

func TestMemoTooManyHeaders(t *testing.T) {
	m := newMemo(64)
	r := memoReq("/")
	for i := range maxMemoHeaders + 1 {
		m.record(0, []string{"H" + strconv.Itoa(i)}, r, hook.KeyDefault, nil)
	}
	if !m.disabled.Load() {
		t.Fatal("memo still on after reading too many headers")
	}
	if _, _, ok := m.lookup(nil, r); ok {
		t.Fatal("hit from a disabled memo")
	}
}

func TestMemoLookupAllocs(t *testing.T) {
	m := newMemo(64)
	r := memoReq("/products/42", "Accept", "text/html", "X-Device", "mobile")
	m.record(fieldPath|fieldHost|fieldQuery, []string{"Accept", "X-Device"}, r, hook.KeyReplace, []byte("key"))
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(1000, func() { buf, _, _ = m.lookup(buf[:0], r) }); n != 0 {
		t.Fatalf("lookup allocates %v times", n)
	}
}
