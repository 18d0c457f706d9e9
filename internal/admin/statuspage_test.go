//go:build linux

package admin_test

import (
	"bytes"
	"context"
	"github.com/edgecache/edgecache/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

// chromium finds Debian's chromium (scripts/deps-chromium.sh installs
// it). Without it the page test skips, except under CI=true, where it
// fails: CI must run it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "chromium not found: run scripts/deps-chromium.sh (apt-get install -y chromium)")
	return ""
}

// TestStatusPageInChromium loads the status page in headless Chromium with
// the admin token in the URL fragment (the page exchanges it for a session
// cookie and reloads), and checks that the rendered page shows every
// shard with its health and the generation. The screenshot is kept in the
// test's output directory; EDGECACHE_UPDATE_SCREENSHOT=1 copies it to
// testdata/statuspage.png.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	start := time.Now()
	servers := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	doc := shardYAML(origin.URL, "edge-a="+servers[0].Addr, "edge-b="+servers[1].Addr+"*2", "edge-c="+servers[2].Addr)
	_, base, api, _ := fileSourceGateway(t, doc, nil)
	for i := range 20 { // some traffic: misses, then L2 and L1 hits
		get(t, base+"/products/"+string(rune('a'+i%5)))
	}
	update := os.Getenv("EDGECACHE_UPDATE_SCREENSHOT") == "1"
	if update {
		// For the kept screenshot, a chart with a few intervals of
		// traffic whose mix of misses and hits changes.
		for i := 0; time.Since(start) < 32*time.Second; i++ {
			get(t, base+"/products/"+strconv.Itoa(i%(50+i/40)))
			time.Sleep(10 * time.Millisecond)
		}
	}

	dir := t.TempDir()
	shot := filepath.Join(dir, "statuspage.png")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		// Virtual time lets the login script run and the page reload; it
		// stays below the page's refresh interval.
		"--virtual-time-budget=3000",
		"--window-size=1200,820", "--hide-scrollbars",
		"--screenshot="+shot, "--dump-dom",
		api+"/admin/#token="+testToken)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // chromium forks: end them all
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String(), 2000))
	}
	dom := stdout.String()
	if !strings.Contains(dom, "<title>edgecache · generation 1</title>") {
		t.Fatalf("the page did not log in; DOM:\n%s\nchromium:\n%s", tail(dom, 3000), tail(stderr.String(), 2000))
	}
	for _, s := range []string{"edge-a", "edge-b", "edge-c"} {
		if !strings.Contains(dom, `data-shard="`+s+`"`) {
			t.Errorf("shard %s is not on the page", s)
		}
	}
	if n := strings.Count(dom, `<span class="ok">up</span>`); n != 3 {
		t.Errorf("%d shards shown up, want 3", n)
	}
	for _, want := range []string{`id="generation">1<`, `id="reload">ok<`, `<svg class="chart"`, "No WASM plugin is loaded"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(dom, testToken) {
		t.Error("the token is in the rendered page")
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if update {
		if err := os.WriteFile(filepath.Join("testdata", "statuspage.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
