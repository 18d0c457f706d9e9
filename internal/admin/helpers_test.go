package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/testutil"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// hit-ratio sampler of an Admin not closed, for one).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const testToken = "test-admin-token-0123456789"

var client = &http.Client{Timeout: 10 * time.Second}

// newTestOrigin is an origin that answers every path with "body of PATH",
// cacheable for five minutes.
func newTestOrigin(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// shardYAML is a config with one route to origin and the shards given as
// "name=addr" or "name=addr*weight".
func shardYAML(origin string, shards ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "routes:\n  - { name: t, origin: %q, default_ttl: 1m }\n", origin)
	b.WriteString("valkey: { command_timeout: 300ms, dial_timeout: 300ms, breaker_cooldown: 1s }\n")
	if len(shards) > 0 {
		b.WriteString("shards:\n")
	}
	for _, s := range shards {
		name, rest, _ := strings.Cut(s, "=")
		addr, w, ok := strings.Cut(rest, "*")
		if !ok {
			w = "1"
		}
		fmt.Fprintf(&b, "  - { name: %s, addr: %q, weight: %s }\n", name, addr, w)
	}
	return b.String()
}

// fileSourceGateway serves a gateway whose config source is a file on a
// loopback listener, and its admin API (token testToken) on another.
func fileSourceGateway(t *testing.T, doc string, logs io.Writer) (g *gateway.Gateway, base, api, file string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "edgecache.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	src := config.Source{File: file}
	cfg, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	g, err = gateway.New(cfg, gateway.Options{Source: src, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	a := admin.New(g, testToken)
	t.Cleanup(func() { a.Close(); g.Close() }) // after both listeners stopped: cleanups run last first
	base = serve(t, g.Serve)
	api = serve(t, a.Serve)
	return g, base, api, file
}

// serve runs fn on a loopback listener until the test ends.
func serve(t *testing.T, fn func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type result struct {
	status int
	body   string
}

func get(t testing.TB, url string) result {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b)}
}

// syncBuffer is a log sink that tests read while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
