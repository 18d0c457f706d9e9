package examples

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"github.com/edgecache/edgecache/internal/testutil"

	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgecache/edgecache/examples/origin"
	"github.com/edgecache/edgecache/internal/cli"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// wantConfigs are the example configurations that must exist: one per
// shard kind, and one with a plugin in each SDK language. Every other
// *.yaml in configs/ is checked too.
var wantConfigs = []string{"embedded.yaml", "three-shards.yaml", "sentinel.yaml", "cluster.yaml", "plugins.yaml", "elasticache.yaml", "memorystore.yaml", "upstash.yaml", "pools.yaml", "shield.yaml", "tls.yaml", "acme.yaml"}

func exampleConfigs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range wantConfigs {
		if !slices.Contains(files, filepath.Join("configs", want)) {
			t.Errorf("configs/%s is missing", want)
		}
	}
	return files
}

// configCheck runs `edgecache config check path` in-process.
func configCheck(path string) (code int, out string) {
	var stdout, stderr bytes.Buffer
	code = cli.Main(context.Background(), []string{"config", "check", path}, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// TestConfigsCheck runs `edgecache config check` on every example.
func TestConfigsCheck(t *testing.T) {
	for _, f := range exampleConfigs(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out := configCheck(f)
			if code != 0 || out != f+": ok\n" {
				t.Errorf("config check %s: exit %d\n%s", f, code, out)
			}
		})
	}
	// The check itself must be able to fail.
	t.Run("typo is rejected", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte("routes:\n  - origin: http://127.0.0.1:9000\n    defualt_ttl: 5m\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := configCheck(bad); code != 1 || !strings.Contains(out, "defualt_ttl") {
			t.Errorf("config check of a typo: exit %d\n%s", code, out)
		}
	})
}

// TestConfigsServe serves each example configuration with its addresses
// pointed at real servers of the kind it names — standalone nodes, a
// Sentinel group, a Cluster, or none for the embedded store — and checks
// that GET /products/1 is a stored miss, then a hit, with one request
// reaching the origin.
func TestConfigsServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Valkey servers")
	}
	for _, f := range exampleConfigs(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			doc := readYAML(t, f)
			o := origin.New(0)
			ts := httptest.NewServer(o)
			defer ts.Close()
			pointAt(t, doc, ts.URL, f)
			client := pointTLS(t, doc, f)
			path := filepath.Join(t.TempDir(), filepath.Base(f))
			writeYAML(t, path, doc)

			base := serve(t, path, client)
			host := firstRouteHost(doc)
			for i, want := range []string{"edgecache; fwd=uri-miss; stored", "edgecache; hit; "} {
				req, _ := http.NewRequest(http.MethodGet, base+"/products/1", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cs := resp.Header.Get("Cache-Status")
				if resp.StatusCode != 200 || !strings.HasPrefix(cs, want) || !bytes.Contains(body, []byte(`"id":1`)) {
					t.Errorf("GET %d: %d, Cache-Status %q, body %q; want 200, %q", i+1, resp.StatusCode, cs, body, want)
				}
			}
			if n := o.Requests(); n != 1 {
				t.Errorf("origin served %d requests, want 1", n)
			}
			for _, c := range extraChecks[filepath.Base(f)] {
				resp, err := client.Get(base + c.path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != c.status || !strings.HasPrefix(cs, c.cacheStatus) {
					t.Errorf("GET %s: %d, Cache-Status %q; want %d, %q (%s)", c.path, resp.StatusCode, cs, c.status, c.cacheStatus, c.why)
				}
			}
		})
	}
}

// extraChecks are requests an example answers in its own way, after the
// GET /products/1 miss and hit every example serves.
var extraChecks = map[string][]struct {
	path        string
	status      int
	cacheStatus string
	why         string
}{
	"plugins.yaml": {
		{"/products/1?utm_source=mail&fbclid=x", 200, "edgecache; hit;", "the Go key plugin drops tracking parameters"},
		{"/internal/report", 403, "", "the AssemblyScript miss plugin denies /internal/ at the edge"},
	},
}

// pointAt rewrites doc in place: every route's origin becomes originURL,
// every shard's addresses those of real servers started for the test, and
// plugin paths (relative to the example file's folder) absolute.
func pointAt(t *testing.T, doc map[string]any, originURL, file string) {
	t.Helper()
	dir := filepath.Dir(file)
	for _, p := range list(doc["plugins"]) {
		p := p.(map[string]any)
		if path, _ := p["path"].(string); path != "" && !filepath.IsAbs(path) {
			abs, err := filepath.Abs(filepath.Join(dir, path))
			if err != nil {
				t.Fatal(err)
			}
			p["path"] = abs
		}
	}
	for _, r := range list(doc["routes"]) {
		r.(map[string]any)["origin"] = originURL
	}
	shards := list(doc["shards"])
	v, _ := doc["valkey"].(map[string]any)
	for _, s := range shards {
		s := s.(map[string]any)
		opts := managed(t, filepath.Base(file), v, s)
		switch {
		case s["addr"] != nil:
			s["addr"] = valkeytest.Start(t, 1, opts...)[0].Addr
		case s["sentinel"] != nil:
			g := valkeytest.StartSentinel(t, opts...)
			s["sentinel"] = map[string]any{"master": g.MasterName, "addrs": g.SentinelAddrs()}
		case s["cluster"] != nil:
			s["cluster"] = valkeytest.StartCluster(t, 3, opts...).Seeds()
		default:
			t.Fatalf("shard %v: unknown kind", s["name"])
		}
	}
}

func list(v any) []any { l, _ := v.([]any); return l }

// noTracking names the examples of a managed Valkey that refuses CLIENT
// TRACKING: their test servers refuse it too.
var noTracking = map[string]bool{"upstash.yaml": true}

// managed points the TLS and credentials of a shard (and of valkey, the
// shards' defaults) at a CA and an ACL user made for the test, and
// returns the options that start servers asking for them.
func managed(t *testing.T, example string, sections ...map[string]any) []valkeytest.Option {
	t.Helper()
	var opts []valkeytest.Option
	var ca *valkeytest.CA
	user := false
	for _, m := range sections {
		if m == nil {
			continue
		}
		if m["tls"] != nil {
			if ca == nil {
				ca = valkeytest.NewCA(t)
				opts = append(opts, valkeytest.WithTLS(ca))
			}
			m["tls"] = map[string]any{"ca_file": ca.CAFile}
		}
		if m["username"] != nil || m["password_file"] != nil || m["password_env"] != nil || m["password_command"] != nil {
			pw := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(pw, []byte("test-password"), 0o600); err != nil {
				t.Fatal(err)
			}
			delete(m, "password_env")
			delete(m, "password_command")
			m["username"], m["password_file"] = "edgecache", pw
			user = true
		}
	}
	if user {
		rules := []string{"~*", "&*", "+@all"}
		if noTracking[example] {
			rules = append(rules, "-client|tracking")
		}
		opts = append(opts, valkeytest.WithUser("edgecache", "test-password", rules...))
	}
	return opts
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func writeYAML(t *testing.T, path string, doc map[string]any) {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serveTimeout bounds how long the gateway may take to start.
const serveTimeout = 2 * time.Minute

// serve runs `edgecache serve --config path` in-process on free loopback
// ports until the test ends, and returns the traffic base URL.
func serve(t *testing.T, path string, client *http.Client) string {
	t.Helper()
	listen, admin := testutil.FreeAddr(t), testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"serve", "--config", path, "--listen", listen,
			"--set", "admin.listen=" + admin, "--log-format", "text"}, io.Discard, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	base := "http://" + listen
	if client.Transport != nil {
		base = "https://" + listen
	}
	// Generous: compiling the plugins of plugins.yaml (a Go guest among
	// them) takes seconds, and many more under the race detector.
	for deadline := time.Now().Add(serveTimeout); ; {
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not up on %s:\n%s", listen, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the gateway's logger and the test.
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

// pointTLS makes an example's TLS listener servable in the test: its
// certificate files absolute, the HTTPS redirect on a free port, and (for
// ACME, which internal/listen serves end to end against pebble) the
// example certificate in place of issuance. It returns the client to
// reach it: over HTTPS trusting that certificate when the example
// terminates TLS, plain HTTP otherwise.
func pointTLS(t *testing.T, doc map[string]any, file string) *http.Client {
	t.Helper()
	srv, _ := doc["server"].(map[string]any)
	tlsc, _ := srv["tls"].(map[string]any)
	if tlsc == nil {
		return &http.Client{}
	}
	exampleCert, err := filepath.Abs(filepath.Join("configs", "tls", "example.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tlsc["acme"]; ok {
		delete(tlsc, "acme")
		tlsc["certificates"] = []any{map[string]any{"cert_file": "tls/example.crt", "key_file": "tls/example.key"}}
	}
	for _, c := range list(tlsc["certificates"]) {
		c := c.(map[string]any)
		for _, k := range []string{"cert_file", "key_file"} {
			if p, _ := c[k].(string); p != "" && !filepath.IsAbs(p) {
				abs, err := filepath.Abs(filepath.Join(filepath.Dir(file), p))
				if err != nil {
					t.Fatal(err)
				}
				c[k] = abs
			}
		}
	}
	if srv["redirect_listen"] != nil {
		srv["redirect_listen"] = testutil.FreeAddr(t)
	}
	pem, err := os.ReadFile(exampleCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", exampleCert)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// firstRouteHost is the host of the example's first route ("" for any).
func firstRouteHost(doc map[string]any) string {
	for _, r := range list(doc["routes"]) {
		h, _ := r.(map[string]any)["host"].(string)
		return h
	}
	return ""
}
