package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/observe"
)

// TestDoneAllocatesNothing pins the hit path's report at zero
// allocations with tracing and the access log off.
func TestDoneAllocatesNothing(t *testing.T) {
	o := observe.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rc := o.Route("r")
	r := httptest.NewRequest("GET", "/x", nil)
	ev := observe.Event{Counters: rc, Route: "r", Prefix: "/", Outcome: observe.Hit, Tier: observe.L1, Status: 200, Key: "k"}
	if n := testing.AllocsPerRun(1000, func() { o.Done(r, &ev) }); n != 0 {
		t.Fatalf("Done allocates %v times per request", n)
	}
	if got := metrics.CounterValue(o.Metrics().HitsL1); got < 1000 {
		t.Errorf("l1 hits %v, want at least 1000", got)
	}
}

// TestDoneCounts checks which counter each outcome and tier moves.
func TestDoneCounts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		outcome    observe.Outcome
		tier       observe.Tier
		l1, l2, fb float64
	}{
		{"hit l1", observe.Hit, observe.L1, 1, 0, 0},
		{"hit l2", observe.Hit, observe.L2, 0, 1, 0},
		{"stale fallback", observe.Stale, observe.Fallback, 0, 0, 1},
		{"miss", observe.Miss, observe.Origin, 0, 0, 0},
		{"no route", observe.NoRoute, observe.None, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := observe.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ev := observe.Event{Outcome: tc.outcome, Tier: tc.tier, Status: 200}
			if tc.outcome != observe.NoRoute {
				ev.Counters, ev.Route = o.Route("r"), "r"
			}
			o.Done(httptest.NewRequest("GET", "/", nil), &ev)
			m := o.Metrics()
			if l1, l2, fb := metrics.CounterValue(m.HitsL1), metrics.CounterValue(m.HitsL2), metrics.CounterValue(m.HitsFallback); l1 != tc.l1 || l2 != tc.l2 || fb != tc.fb {
				t.Errorf("hits l1 %v l2 %v fallback %v, want %v %v %v", l1, l2, fb, tc.l1, tc.l2, tc.fb)
			}
			want := "r"
			if tc.outcome == observe.NoRoute {
				want = "none"
			}
			if got := m.RequestsBy("route")[want]; got != 1 {
				t.Errorf("requests of route %q: %v, want 1", want, got)
			}
		})
	}
}

// TestAccessLog: one line per request with the decision, the key only as
// its hash.
func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	o := observe.New(nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	o.SetAccess(true)
	ev := observe.Event{Counters: o.Route("r"), Route: "r", Outcome: observe.Stale, Tier: observe.L2, Status: 200, Key: "secret-key", Shard: "s1"}
	o.Done(httptest.NewRequest("GET", "/p", nil), &ev)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, v := range map[string]any{"msg": "request", "route": "r", "cache": "stale", "tier": "l2", "shard": "s1", "path": "/p", "key_hash": observe.KeyHash("secret-key")} {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("secret-key")) {
		t.Error("the key is in the access log")
	}
	if got := observe.KeyHash("a"); got != "af63dc4c8601ec8c" { // FNV-1a 64 of "a": the same on every gateway
		t.Errorf("KeyHash(a) = %s", got)
	}
}

// TestShardHooks: a command's duration reaches the shard histogram.
func TestShardHooks(t *testing.T) {
	o := observe.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	o.ShardHooks().Command(context.Background(), "s0", "get", time.Now().Add(-time.Millisecond), nil)
	fams, err := o.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == metrics.ShardCommandDuration {
			if n := f.GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
				t.Fatalf("%d samples, want 1", n)
			}
			return
		}
	}
	t.Fatal("no shard command histogram")
}
