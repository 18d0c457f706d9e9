package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

const h2loadOutput = `starting benchmark...
finished in 10.00s, 45678.90 req/s, 50.00MB/s
requests: 456789 total, 456789 started, 456789 done, 456780 succeeded, 9 failed, 9 errored, 0 timeout
status codes: 456770 2xx, 0 3xx, 10 4xx, 0 5xx
traffic: 500.00MB (524288000) total, 1.00MB (1048576) headers (space savings 90.00%), 450.00MB (471859200) data
                     min         max         mean         sd        +/- sd
time for request:      120us     25.50ms      1.40ms       900us    80.00%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 45678.90 || r.Requests != 456780 || r.Non2xx != 10 || r.SockErrs != 18 || r.Duration != 10*time.Second ||
		r.P50 != 1400*time.Microsecond || r.P99 != 25500*time.Microsecond {
		t.Fatalf("%+v", r)
	}
	if _, err := parseH2load("garbage"); err == nil {
		t.Fatal("no error for output without a summary")
	}
}

// The TLS edgecache's config and nginx's TLS server are valid, with the
// same certificate.
func TestTLSTemplates(t *testing.T) {
	cert, _ := filepath.Abs(filepath.Join("..", benchCert))
	key, _ := filepath.Abs(filepath.Join("..", benchKey))
	s := &stack{originAddr: "127.0.0.1:9000", slowAddr: "127.0.0.1:9001", shardAddrs: []string{"127.0.0.1:7001"}}
	x := extras{server: "  tls:\n    min_version: \"1.3\"\n    certificates:\n      - { cert_file: " + cert + ", key_file: " + key + " }\n"}
	c, err := config.Parse([]byte(s.edgeYAML("127.0.0.1:8443", "127.0.0.1:9090", false, x)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Server.TLS.Enabled() || c.Server.TLS.MinVersion != "1.3" {
		t.Fatalf("%+v", c.Server.TLS)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "nginx.conf")
	if err := render("templates/nginx.conf.tmpl", dst, mergeData(map[string]any{"Dir": dir, "Workers": 1, "Port": "8081", "OriginPort": "9000"},
		map[string]any{"TLSPort": "8444", "Cert": cert, "Key": key})); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	if !strings.Contains(string(b), "listen 127.0.0.1:8444 ssl http2") || !strings.Contains(string(b), "ssl_certificate "+cert) || strings.Contains(string(b), "<no value>") {
		t.Fatalf("nginx.conf:\n%s", b)
	}
	w := wrkRun{URL: "https://127.0.0.1:8443/", Threads: 2, Conns: 64, Streams: 10, Duration: 10 * time.Second, H2: true}
	if got := strings.Join(w.h2loadArgv()[:10], " "); got != "h2load -t 2 -c 64 -m 10 -D 10 https://127.0.0.1:8443/products/1" {
		t.Fatalf("h2load argv %q", got)
	}
}
