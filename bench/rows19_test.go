package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRows19Templates renders the nginx and Varnish templates with the
// large-body and miss origins and checks the result: nginx -t parses the
// nginx config when nginx is installed (fails under CI=true without it).
func TestRows19Templates(t *testing.T) {
	s := &stack{originAddr: "127.0.0.1:9001", slowAddr: "127.0.0.1:9002", big100kAddr: "127.0.0.1:9003", big1mAddr: "127.0.0.1:9004"}
	dir := t.TempDir()
	data := mergeData(map[string]any{"Dir": dir, "Workers": 1, "Port": "9000", "OriginPort": "9001"}, s.bigTemplateData())
	nconf, vcl := filepath.Join(dir, "nginx.conf"), filepath.Join(dir, "default.vcl")
	if err := render("templates/nginx.conf.tmpl", nconf, data); err != nil {
		t.Fatal(err)
	}
	if err := render("templates/varnish.vcl.tmpl", vcl, data); err != nil {
		t.Fatal(err)
	}
	nb, _ := os.ReadFile(nconf)
	vb, _ := os.ReadFile(vcl)
	for _, want := range []string{"server_name big1m.bench;", "proxy_pass http://big100k;", "server 127.0.0.1:9002;"} {
		if !strings.Contains(string(nb), want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	if !strings.Contains(string(vb), `req.http.host == "big1m.bench"`) || !strings.Contains(string(vb), `.port = "9004";`) {
		t.Errorf("default.vcl lacks the large-body backends:\n%s", vb)
	}
	var b strings.Builder
	s.bigRoutes(&b)
	if !strings.Contains(b.String(), "host: big100k.bench\n    origin: http://127.0.0.1:9003") {
		t.Errorf("edgecache routes: %s", b.String())
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx not installed")
		}
		t.Skip("nginx not installed")
	}
	for _, d := range []string{"client_body", "proxy_temp", "cache"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", nconf, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestMedianCPU keeps, per workload and system, the round of median CPU
// per request, in the order the rows first came, and says the range.
func TestMedianCPU(t *testing.T) {
	us := time.Microsecond
	in := []row{
		{workload: wlMissCPU, system: "edgecache", cpu: 300 * us},
		{workload: wlMissCPU, system: "nginx", cpu: 120 * us},
		{workload: wlMissCPU, system: "edgecache", cpu: 180 * us},
		{workload: wlMissCPU, system: "nginx", cpu: 170 * us},
		{workload: wlMissCPU, system: "edgecache", cpu: 200 * us},
		{workload: wlMissCPU, system: "nginx", cpu: 130 * us},
	}
	got := medianCPU(in)
	if len(got) != 2 || got[0].system != "edgecache" || got[1].system != "nginx" {
		t.Fatalf("rows %+v; want edgecache then nginx", got)
	}
	if got[0].cpu != 200*us || got[1].cpu != 130*us {
		t.Errorf("medians %v, %v; want 200µs, 130µs", got[0].cpu, got[1].cpu)
	}
	if !strings.Contains(got[0].note, "median CPU/req of 3 rounds (180.0µs–300.0µs)") {
		t.Errorf("note %q", got[0].note)
	}
}
