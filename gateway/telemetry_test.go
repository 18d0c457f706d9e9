package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/observe"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// headerOrigin is a real origin that remembers the traceparent of each
// request it received.
type headerOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string][]string // path → traceparent values, in order
}

func newHeaderOrigin(t testing.TB) *headerOrigin {
	o := &headerOrigin{seen: map[string][]string{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen[r.URL.Path] = append(o.seen[r.URL.Path], r.Header.Get("Traceparent"))
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *headerOrigin) traceparents(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen[path]...)
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// spansOf returns the spans of one trace, the server span first.
func spansOf(spans tracetest.SpanStubs, tid trace.TraceID) (server tracetest.SpanStub, children []tracetest.SpanStub, ok bool) {
	for _, s := range spans {
		if s.SpanContext.TraceID() != tid {
			continue
		}
		if s.SpanKind == trace.SpanKindServer {
			server, ok = s, true
		} else {
			children = append(children, s)
		}
	}
	return server, children, ok
}

// TestTracing follows three requests for one key (a miss, an L2 hit, an
// L1 hit), each sent with a W3C traceparent, through real shards to a
// real origin, and checks the spans the in-memory exporter received and
// the trace context the origin saw.
func TestTracing(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newHeaderOrigin(t)
	exp := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(exp, nil, 1, true)
	t.Cleanup(func() { _ = tracing.Shutdown(t.Context()) })
	_, base := startGatewayWith(t, testConfig(origin.URL, servers), gateway.Options{Tracing: tracing})

	const path = "/traced?token=s3cret"
	send := func(traceID, parent string) result {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Traceparent", "00-"+traceID+"-"+parent+"-01")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{resp.StatusCode, string(b), resp.Header.Get("Cache-Status"), resp.Header.Get("Age"), resp.Header}
	}
	steps := []struct {
		name, parent, cacheStatus string
		outcome, tier             string
		valkey                    bool // a child span for a shard round trip
	}{
		{"miss", "b7ad6b7169203331", "edgecache; fwd=uri-miss; stored", "miss", "origin", true},
		{"l2 hit", "c7ad6b7169203331", hitL2, "hit", "l2", true},
		{"l1 hit", "d7ad6b7169203331", hitL1, "hit", "l1", false},
	}
	key := keyOf(t, base+path)
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			// Right after a store the L1 may still answer the earlier miss
			// until Valkey's invalidation arrives: send until the response
			// is the one this step is about, then check that trace.
			var traceID string
			for attempt := 0; ; attempt++ {
				traceID = fmt.Sprintf("%02x%030x", i+1, attempt+1)
				if r := send(traceID, s.parent); r.cacheStatus == s.cacheStatus {
					break
				} else if attempt == 50 || i == 0 {
					t.Fatalf("got %q, want %q", r.cacheStatus, s.cacheStatus)
				}
			}
			tid, _ := trace.TraceIDFromHex(traceID)
			var server tracetest.SpanStub
			var children []tracetest.SpanStub
			// The server span ends after the response is written.
			deadline := time.Now().Add(5 * time.Second)
			for ok := false; !ok; {
				if server, children, ok = spansOf(exp.GetSpans(), tid); !ok && time.Now().After(deadline) {
					t.Fatalf("no server span in trace %s", traceID)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got := server.Parent.SpanID().String(); got != s.parent || !server.Parent.IsRemote() {
				t.Errorf("server span's parent %s (remote %v), want the client's %s", got, server.Parent.IsRemote(), s.parent)
			}
			if server.Name != "GET /*" {
				t.Errorf("server span name %q, want %q", server.Name, "GET /*")
			}
			a := attrs(server.Attributes)
			for k, want := range map[attribute.Key]string{
				"http.request.method":       "GET",
				"http.response.status_code": "200",
				"http.route":                "/*",
				"url.path":                  "/traced",
				"url.scheme":                "http",
				observe.AttrRoute:           "test",
				observe.AttrOutcome:         s.outcome,
				observe.AttrTier:            s.tier,
			} {
				if a[k] != want {
					t.Errorf("server span %s = %q, want %q", k, a[k], want)
				}
			}
			if a[observe.AttrShard] == "" || !strings.HasPrefix(a[observe.AttrShard], "shard-") {
				t.Errorf("server span %s = %q, want the owning shard", observe.AttrShard, a[observe.AttrShard])
			}
			if len(a[observe.AttrKeyHash]) < 8 {
				t.Errorf("server span %s = %q, want a hash", observe.AttrKeyHash, a[observe.AttrKeyHash])
			}
			for k, v := range a {
				if strings.Contains(v, "s3cret") || v == key {
					t.Errorf("server span attribute %s holds the raw key or query: %q", k, v)
				}
			}
			var valkeySpans, originSpans []tracetest.SpanStub
			for _, c := range children {
				if c.Parent.SpanID() != server.SpanContext.SpanID() {
					continue
				}
				switch {
				case strings.HasPrefix(c.Name, "valkey "):
					valkeySpans = append(valkeySpans, c)
				case c.Name == "origin GET":
					originSpans = append(originSpans, c)
				}
			}
			if s.valkey != (len(valkeySpans) > 0) {
				t.Errorf("%d valkey child spans, want some: %v", len(valkeySpans), s.valkey)
			}
			for _, v := range valkeySpans {
				va := attrs(v.Attributes)
				if v.SpanKind != trace.SpanKindClient || va["db.system.name"] != "valkey" || va[observe.AttrShard] == "" {
					t.Errorf("valkey span %q: kind %v, attributes %v", v.Name, v.SpanKind, va)
				}
			}
			seen := origin.traceparents("/traced")
			if s.outcome != "miss" {
				if len(originSpans) != 0 {
					t.Errorf("a hit made %d origin spans", len(originSpans))
				}
				return
			}
			if len(originSpans) != 1 {
				t.Fatalf("%d origin client spans, want 1 (children: %v)", len(originSpans), children)
			}
			o := originSpans[0]
			if o.SpanKind != trace.SpanKindClient {
				t.Errorf("origin span kind %v", o.SpanKind)
			}
			if oa := attrs(o.Attributes); oa["http.response.status_code"] != "200" {
				t.Errorf("origin span attributes %v", oa)
			}
			// The origin saw the trace, with the client span as its parent.
			want := "00-" + traceID + "-" + o.SpanContext.SpanID().String() + "-01"
			if len(seen) != 1 || seen[0] != want {
				t.Errorf("origin saw traceparent %q, want %q", seen, want)
			}
		})
	}
}

// TestTracingUnsampled checks that a request the sampler drops still
// carries its trace context to the origin, and that nothing is exported.
func TestTracingUnsampled(t *testing.T) {
	origin := newHeaderOrigin(t)
	exp := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(exp, nil, 0, true)
	_, base := startGatewayWith(t, testConfig(origin.URL, nil), gateway.Options{Tracing: tracing})
	get(t, base+"/quiet")
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported at ratio 0", n)
	}
	seen := origin.traceparents("/quiet")
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "00-") || !strings.HasSuffix(seen[0], "-00") {
		t.Errorf("origin saw %q, want an unsampled traceparent", seen)
	}
}

// syncBuffer is a log sink safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLog checks that with log.access every request gets one JSON
// line with its request id (new for each request on a connection) and
// trace id, and without it none.
func TestAccessLog(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Log.Access = true
	var logs syncBuffer
	exp := tracetest.NewInMemoryExporter()
	g, base := startGatewayWith(t, cfg, gateway.Options{
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
		Tracing: telemetry.NewTracingWith(exp, nil, 1, true),
	})
	for range 2 {
		get(t, base+"/logged") // one keep-alive connection (the shared client)
	}
	var access []map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" {
			access = append(access, l)
		}
	}
	if len(access) != 2 {
		t.Fatalf("%d access-log lines, want 2: %v", len(access), access)
	}
	traces := map[string]bool{}
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			traces[s.SpanContext.TraceID().String()] = true
		}
	}
	for i, l := range access {
		for k, want := range map[string]any{"method": "GET", "path": "/logged", "status": float64(200), "route": "test"} {
			if l[k] != want {
				t.Errorf("line %d: %s = %v, want %v", i, k, l[k], want)
			}
		}
		if id, _ := l["request_id"].(string); strings.Count(id, "-") != 2 {
			t.Errorf("line %d: request_id %q", i, l["request_id"])
		}
		if tid, _ := l["trace_id"].(string); !traces[tid] {
			t.Errorf("line %d: trace_id %q is not a server span's (%v)", i, tid, traces)
		}
	}
	if access[0]["cache"] != "miss" || access[1]["cache"] != "hit" {
		t.Errorf("cache outcomes %v, %v", access[0]["cache"], access[1]["cache"])
	}
	id0, id1 := access[0]["request_id"].(string), access[1]["request_id"].(string)
	if id0 == id1 {
		t.Errorf("two requests share request_id %q", id0)
	}
	if conn0, conn1 := id0[:strings.LastIndexByte(id0, '-')], id1[:strings.LastIndexByte(id1, '-')]; conn0 != conn1 {
		t.Logf("requests on different connections: %s, %s", id0, id1)
	}

	// A reload that turns the access log off takes effect at once.
	off := testConfig(origin.URL, nil)
	if err := g.Reload(off, "test"); err != nil {
		t.Fatal(err)
	}
	get(t, base+"/logged")
	n := 0
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d access-log lines after turning it off, want still 2", n)
	}
}

// BenchmarkHitTracing is the L1 hit path of BenchmarkHit with tracing
// off (no middleware: the default without an OTLP endpoint), with the
// middleware and a no-op provider, with the SDK sampling nothing (ratio
// 0) and sampling everything (ratio 1, batch export to a discarding
// exporter).
func BenchmarkHitTracing(b *testing.B) {
	for _, bc := range []struct {
		name    string
		tracing func() *telemetry.Tracing
	}{
		{"off", func() *telemetry.Tracing { return nil }},
		{"noop", func() *telemetry.Tracing {
			return &telemetry.Tracing{Provider: noop.NewTracerProvider(), Propagator: telemetry.Propagator, Enabled: true}
		}},
		{"sdk-ratio0", func() *telemetry.Tracing { return telemetry.NewTracingWith(tracetest.NewNoopExporter(), nil, 0, false) }},
		{"sdk-ratio1", func() *telemetry.Tracing { return telemetry.NewTracingWith(tracetest.NewNoopExporter(), nil, 1, false) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for _, store := range []string{"embedded", "valkey-l1"} {
				b.Run(store, func(b *testing.B) {
					var cfg *config.Config
					if store == "embedded" {
						cfg = testConfig("http://unused", nil)
					} else {
						cfg = testConfig("http://unused", valkeytest.Start(b, 3))
					}
					tr := bc.tracing()
					if tr != nil {
						b.Cleanup(func() { _ = tr.Shutdown(b.Context()) })
					}
					benchHitWith(b, cfg, gateway.Options{Tracing: tr}, hitL1)
				})
			}
		})
	}
}

// benchHitWith is benchHit with gateway options.
func benchHitWith(b *testing.B, cfg *config.Config, o gateway.Options, wantCS string) {
	origin := newTestOrigin(b)
	origin.body = func(string) string { return string(make([]byte, 1024)) }
	cfg.Routes[0].Origin = origin.URL
	g, _ := startGatewayWith(b, cfg, o)
	h := g.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://bench.example/products/12345?a=1&b=2", nil)
	w := &discardWriter{h: http.Header{}}
	// Miss, then L2, then L1; the L1 may answer the miss again until
	// Valkey's invalidation of the SET arrives, so warm up until it hits.
	for i := 0; w.h.Get("Cache-Status") != wantCS; i++ {
		if i == 100 {
			b.Fatalf("warm-up ended with %q, want %q", w.h.Get("Cache-Status"), wantCS)
		}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != 200 || w.h.Get("Cache-Status") != wantCS {
		b.Fatalf("status %d, %q", w.status, w.h.Get("Cache-Status"))
	}
}
