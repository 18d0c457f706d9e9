package walkthrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/edgecache/edgecache/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

// demoTimeout bounds the whole walkthrough, build included (a cold build
// on a loaded 2-core machine takes a minute or two).
const demoTimeout = 6 * time.Minute

// TestDemo runs scripts/demo.sh as `make demo` does, on free loopback
// ports, and checks the story it tells: a miss then hits on the shard
// that owns the key with an hour's TTL, the plan for a fourth shard, a
// reload, and the moved keys found on the new shard without going to the
// origin, and a purge through the admin API. Afterwards nothing may still
// listen on the ports it used.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the walkthrough builds binaries and starts servers")
	}
	requireTools(t, []string{"valkey-server", "redis-server"}, []string{"valkey-cli", "redis-cli"}, []string{"curl"}, []string{"bash"})
	if runtime.GOOS != "linux" {
		t.Skip("the walkthrough script is tested on Linux")
	}

	ports := testutil.FreePorts(t, 7)
	env := append(os.Environ(),
		"BIN="+t.TempDir(),
		"TMPDIR="+t.TempDir(),
		fmt.Sprintf("DEMO_VALKEY_PORTS=%d %d %d %d", ports[0], ports[1], ports[2], ports[3]),
		fmt.Sprintf("DEMO_ORIGIN_PORT=%d", ports[4]),
		fmt.Sprintf("DEMO_GATEWAY_PORT=%d", ports[5]),
		fmt.Sprintf("DEMO_ADMIN_PORT=%d", ports[6]),
	)
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "scripts", "demo.sh"))
	cmd.Env = env
	// Its own process group, so that a timeout kills the servers it
	// started too, not only the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Should a server outlive the script, it holds the output pipe: stop
	// waiting for it (the port check below then fails the test).
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("scripts/demo.sh output:\n%s", out.String())
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v", err)
	}
	checkStory(t, out.String())

	// The trap stopped every process: no port answers any more.
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%d still answers after the demo exited", p)
		}
	}
}

// checkStory checks the walkthrough's output.
func checkStory(t *testing.T, out string) {
	t.Helper()
	// Step 1: miss and store, then hits, all on one shard.
	reqs := regexp.MustCompile(`(?m)^request (\d): Cache-Status: (.*?)\s+Age: (\S+)\s+held by: (shard-[a-c]) `).FindAllStringSubmatch(out, -1)
	if len(reqs) != 3 {
		t.Fatalf("want 3 request lines, got %d", len(reqs))
	}
	if got := reqs[0][2]; got != "edgecache; fwd=uri-miss; stored" {
		t.Errorf("request 1: Cache-Status %q, want a stored miss", got)
	}
	for _, r := range reqs[1:] {
		if !strings.HasPrefix(r[2], "edgecache; hit;") {
			t.Errorf("request %s: Cache-Status %q, want a hit", r[1], r[2])
		}
		if r[4] != reqs[0][4] {
			t.Errorf("request %s: key held by %s, request 1 by %s", r[1], r[4], reqs[0][4])
		}
	}
	if age, err := strconv.Atoi(reqs[2][3]); err != nil || age < 1 {
		t.Errorf("request 3: Age %q, want at least 1 (a second after the miss)", reqs[2][3])
	}
	m := regexp.MustCompile(`(?m)^PTTL on (shard-[a-c]): (\d+) ms`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no PTTL line")
	}
	if m[1] != reqs[0][4] {
		t.Errorf("PTTL read on %s, key held by %s", m[1], reqs[0][4])
	}
	// The entry lives max-age=3600 fresh, then routes[].keep for
	// revalidation (the demo config leaves keep at its default).
	life := time.Hour + config.DefaultKeep
	if ms, _ := strconv.Atoi(m[2]); ms < int(life.Milliseconds())-100_000 || ms > int(life.Milliseconds()) {
		t.Errorf("PTTL %d ms, want about %v (max-age=3600 plus keep)", ms, life)
	}

	// Step 2: 200 stored misses spread over three shards.
	if !regexp.MustCompile(`(?m)^\s+200 edgecache; fwd=uri-miss; stored$`).MatchString(out) {
		t.Error("warming: want 200 stored misses")
	}
	counts := regexp.MustCompile(`(?m)^keys per shard: (.*)$`).FindAllStringSubmatch(out, -1)
	if len(counts) != 2 {
		t.Fatalf("want 2 'keys per shard' lines, got %d", len(counts))
	}
	before, after := perShard(t, counts[0][1]), perShard(t, counts[1][1])
	if len(before) != 3 || sum(before) != 201 {
		t.Errorf("before: %v, want 201 keys over 3 shards", before)
	}
	for name, n := range before {
		if n < 30 {
			t.Errorf("before: %s holds %d of 201 keys: not spread", name, n)
		}
	}

	// Step 3: the plan.
	if !strings.Contains(out, "$ edgecache shardmap plan old.yaml new.yaml --keys keys.txt") ||
		!regexp.MustCompile(`(?m)^\s+shard-d\s+-\s+1\s+0\.00%`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^moves \d+\.\d+% of 201 keys from keys\.txt$`).MatchString(out) {
		t.Error("no shard map plan for adding shard-d in the output")
	}

	// Steps 4 and 5: reloaded, then every read a hit, and shard-d holds
	// what the plan said it would gain.
	if !strings.Contains(out, `msg="configuration reloaded"`) {
		t.Error("no reload in the output")
	}
	if !strings.Contains(out, "origin fetches: 0\n") {
		t.Error("after the reload, want every read answered without the origin")
	}
	g := regexp.MustCompile(`(?m)^the plan said shard-d gains (\d+) of these keys; it holds (\d+)$`).FindStringSubmatch(out)
	if g == nil {
		t.Fatal("no plan-versus-actual line")
	}
	if g[1] != g[2] || g[1] == "0" {
		t.Errorf("plan said shard-d gains %s keys, it holds %s", g[1], g[2])
	}
	if len(after) != 4 || strconv.Itoa(after["shard-d"]) != g[2] {
		t.Errorf("after: %v, want 4 shards with shard-d holding %s", after, g[2])
	}
	// Step 6: the purge removed the entry; the next GET went to the origin.
	if !strings.Contains(out, "\n{\"keys\":1}\n") {
		t.Error("purge: want {\"keys\":1}")
	}
	if !strings.Contains(out, "\nnext GET /products/12345: Cache-Status: edgecache; fwd=uri-miss; stored\n") {
		t.Error("after the purge, want a stored miss")
	}
	for name, n := range before {
		if after[name] != n {
			t.Errorf("%s held %d keys before the reload and %d after; copies only add to the new shard", name, n, after[name])
		}
	}
}

// perShard parses "shard-a=65  shard-b=73".
func perShard(t *testing.T, s string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, f := range strings.Fields(s) {
		name, n, ok := strings.Cut(f, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("cannot parse %q in %q", f, s)
		}
		m[name] = v
	}
	return m
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// requireTools ends the test unless, for each group, one of the named
// programs is on PATH: a skip locally, a failure under CI=true, where a
// test must never pass by skipping. `make test` installs them.
func requireTools(t *testing.T, groups ...[]string) {
	t.Helper()
	var missing []string
	for _, g := range groups {
		found := false
		for _, name := range g {
			if _, err := exec.LookPath(name); err == nil {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, strings.Join(g, " or "))
		}
	}
	if len(missing) == 0 {
		return
	}
	testutil.Missing(t, "not on PATH: %s (make test installs them)", strings.Join(missing, ", "))
}

// repoRoot is the module root, two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no go.mod in %s", dir)
	}
	return dir
}
