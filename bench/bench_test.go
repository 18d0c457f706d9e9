package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    2.10ms  45.00ms   92.00%
    Req/Sec    28.00k     2.00k   33.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.10ms
     90%    2.00ms
     99%   10.45ms
  557000 requests in 10.00s, 700.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  55700.12
Transfer/sec:     70.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 557000, Duration: 10 * time.Second, RPS: 55700.12, P50: 812 * time.Microsecond,
		P99: 10450 * time.Microsecond, Non2xx: 5, SockErrs: 3}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("parsed a failed run")
	}
}

func TestStatFields(t *testing.T) {
	f := statFields("1234 (nginx: worker) S 1200 1234 1234 0 -1 4194624 100 0 0 0 250 130 0 0 20 0 1 0")
	if len(f) < 15 || f[3] != "1200" || f[13] != "250" || f[14] != "130" {
		t.Fatalf("%q", f)
	}
	if d, err := cpuTime(os.Getpid()); err != nil || d < 0 {
		t.Fatalf("cpuTime: %v %v", d, err)
	}
	if r, err := rss(os.Getpid()); err != nil || r <= 0 {
		t.Fatalf("rss: %v %v", r, err)
	}
}

// The configs and templates the benchmark writes are valid.
func TestTemplates(t *testing.T) {
	s := &stack{originAddr: "127.0.0.1:9000", slowAddr: "127.0.0.1:9001", shardAddrs: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}}
	for _, l1 := range []bool{false, true} {
		c, err := config.Parse([]byte(s.edgeYAML("127.0.0.1:8080", "127.0.0.1:9090", l1, extras{})))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Shards) != 3 || len(c.Routes) != 2 || c.Valkey.DisableL1 != l1 || c.Routes[0].Host != "miss.bench" {
			t.Fatalf("%+v", c)
		}
	}
	// The lone gateway of the CPU-per-miss row: its own shards, not the stack's.
	alone := []string{"127.0.0.1:7101", "127.0.0.1:7102"}
	c, err := config.Parse([]byte(s.edgeYAML("127.0.0.1:8080", "127.0.0.1:9090", false, extras{shards: alone})))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shards) != 2 || c.Shards[0].Addr != alone[0] || c.Shards[1].Addr != alone[1] {
		t.Fatalf("lone gateway's shards: %+v", c.Shards)
	}
	o := benchOpts{plugins: "../plugins/testdata/examples"}
	for name, x := range map[string]func() (extras, bool){
		"key plugin":    o.keyPluginExtras,
		"three plugins": func() (extras, bool) { return o.threePluginExtras(t.TempDir()) },
	} {
		e, ok := x()
		if !ok {
			t.Logf("%s: the example plugins are not built; skipped", name)
			continue
		}
		if _, err := config.Parse([]byte(s.edgeYAML("127.0.0.1:8080", "127.0.0.1:9090", false, e))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	dir := t.TempDir()
	for _, name := range []string{"nginx.conf.tmpl", "varnish.vcl.tmpl"} {
		dst := filepath.Join(dir, name)
		if err := render("templates/"+name, dst, map[string]any{"Dir": dir, "Workers": 1, "Port": "8081", "OriginPort": "9000"}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(dst)
		if !strings.Contains(string(b), "9000") || strings.Contains(string(b), "<no value>") {
			t.Fatalf("%s:\n%s", name, b)
		}
	}
}

func TestScrape(t *testing.T) {
	// scrape is exercised by the soak against a real gateway; here only
	// that a dead address yields an empty map, not a panic.
	if m := scrape("http://127.0.0.1:1/metrics", "x"); len(m) != 0 {
		t.Fatal(m)
	}
}
