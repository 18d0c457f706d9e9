package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The footprint run (`edgebench run -only footprint`, `make footprint`):
// the real binary against one shard, its RSS and PSS idle, after warming
// footprintKeys keys of 1 KiB with clients that send no Accept-Encoding
// (wrk, curl, most API clients), and after the same keys were asked for
// again by clients that send footprintBrowserAE (what a browser-facing
// POP pays: the codings made on demand), and where the bytes are, from
// its own Go runtime metrics (the admin /metrics) and /proc.
const (
	footprintKeys = 1000
	// footprintSettle is how long an instance idles before a reading:
	// long enough for startup's garbage to be collected and the
	// background fill of anything lazy to have run.
	footprintSettle = 2 * time.Second
	// footprintBrowserAE is the Accept-Encoding of the second warm-up.
	footprintBrowserAE = "br, gzip"
)

// footprintRow is one reading.
type footprintRow struct {
	name  string
	proc  map[string]int64 // /proc/PID/status and smaps_rollup, bytes
	gomet map[string]float64
}

// footprintMetrics are the Go runtime's series the table breaks RSS into.
var footprintMetrics = []struct{ metric, label string }{
	{"go_memstats_heap_inuse_bytes", "heap in use"},
	{"go_memstats_heap_idle_bytes", "heap idle"},
	{"go_memstats_heap_released_bytes", "heap released"},
	{"go_memstats_stack_inuse_bytes", "stacks"},
	{"go_memstats_gc_sys_bytes", "GC metadata"},
	{"go_memstats_mspan_inuse_bytes", "mspans"},
	{"go_memstats_other_sys_bytes", "other runtime"},
	{"go_memstats_sys_bytes", "Go sys total"},
	{"edgecache_plugin_instances", "plugin instances"},
}

func footprint(ctx context.Context, o benchOpts, root string, out io.Writer) error {
	dir := filepath.Join(root, "footprint")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s, err := startStackShards(ctx, o, dir, 1)
	if err != nil {
		return err
	}
	defer s.stop()
	goX, _ := o.keyPluginExtras()
	cPath := o.pluginPath(cPluginFile)
	cX := extras{products: "plugins: [ttlbystatus]\n", top: fmt.Sprintf("plugins:\n  - name: ttlbystatus\n    path: %q\n", cPath)}
	cases := []struct {
		name string
		x    extras
		ok   bool
	}{
		{"no plugin", extras{}, true},
		{"C plugin (c-ttlbystatus)", cX, cPath != ""},
		{"Go plugin (go-stripparams)", goX, goX.top != ""},
	}
	fmt.Fprintf(out, "== footprint: the binary against 1 shard; idle %v after start, then warm after %d keys × 1 KiB (each GET twice)\n", footprintSettle, footprintKeys)
	var rows []footprintRow
	for i, c := range cases {
		if !c.ok {
			fmt.Fprintf(out, "%s: not run: not in -plugins %q\n", c.name, o.plugins)
			continue
		}
		got, err := footprintOne(ctx, o, s, dir, fmt.Sprintf("fp-%d", i), c.x)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		got[0].name, got[1].name, got[2].name = c.name+", idle", c.name+", warm", c.name+", warm+"+strings.ReplaceAll(footprintBrowserAE, " ", "")
		rows = append(rows, got[:]...)
	}
	printFootprint(out, rows)
	return nil
}

// footprintOne reads one instance idle, warm, and warm after the
// browser-like clients.
func footprintOne(ctx context.Context, o benchOpts, s *stack, dir, name string, x extras) (rows [3]footprintRow, err error) {
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(s.edgeYAML(listen, admin, false, x)), 0o644); err != nil {
		return rows, err
	}
	p, err := start(dir, name, "", []string{"EDGECACHE_ADMIN_TOKEN=" + s.token}, filepath.Join(o.bin, "edgecache"), "serve", "--config", cfg)
	if err != nil {
		return rows, err
	}
	defer p.stop()
	if err := p.waitTCP(ctx, listen, 20*time.Second); err != nil {
		return rows, err
	}
	read := func() (footprintRow, error) {
		time.Sleep(footprintSettle)
		r := footprintRow{proc: procMemory(p.pid())}
		r.gomet, err = scrapeMetrics("http://"+admin+"/metrics", s.token)
		return r, err
	}
	for i, ae := range []string{"", "", footprintBrowserAE} {
		if i > 0 {
			if err := warmCoded(ctx, listen, footprintKeys, 2, ae); err != nil {
				return rows, fmt.Errorf("warming (Accept-Encoding %q): %w", ae, err)
			}
		}
		if rows[i], err = read(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// warmCoded is warm with Accept-Encoding ae ("": none; Go's client
// would otherwise ask for gzip itself).
func warmCoded(ctx context.Context, addr string, keys, rounds int, ae string) error {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	for range rounds {
		for i := 1; i <= keys; i++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/products/%d", addr, i), nil)
			if err != nil {
				return err
			}
			if ae != "" {
				req.Header.Set("Accept-Encoding", ae)
			}
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("warm-up of %s: %s", addr, resp.Status)
			}
		}
	}
	return nil
}

// procMemory reads VmRSS, RssAnon, RssFile (status) and Pss (smaps_rollup)
// of pid, in bytes.
func procMemory(pid int) map[string]int64 {
	m := map[string]int64{}
	for _, f := range []string{"status", "smaps_rollup"} {
		file, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch k {
			case "VmRSS", "RssAnon", "RssFile", "Pss", "Pss_Anon", "Pss_File":
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m[k] = kb << 10
			}
		}
		file.Close()
	}
	return m
}

// scrapeMetrics reads the unlabelled series of footprintMetrics (summed
// over labels) from a Prometheus text endpoint.
func scrapeMetrics(url, token string) (map[string]float64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, rest, ok = line[:i], line[strings.LastIndexByte(line, '}')+1:], true
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			m[name] += v
		}
	}
	return m, sc.Err()
}

func printFootprint(out io.Writer, rows []footprintRow) {
	mib := func(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }
	fmt.Fprintf(out, "%-36s %6s %6s %6s %6s", "MiB", "RSS", "anon", "file", "PSS")
	for _, f := range footprintMetrics[:len(footprintMetrics)-1] {
		fmt.Fprintf(out, " %8s", strings.ReplaceAll(f.label, " ", "_"))
	}
	fmt.Fprintf(out, " %9s\n", "instances")
	for _, r := range rows {
		fmt.Fprintf(out, "%-36s %6s %6s %6s %6s", r.name, mib(float64(r.proc["VmRSS"])), mib(float64(r.proc["RssAnon"])),
			mib(float64(r.proc["RssFile"])), mib(float64(r.proc["Pss"])))
		for _, f := range footprintMetrics[:len(footprintMetrics)-1] {
			fmt.Fprintf(out, " %8s", mib(r.gomet[f.metric]))
		}
		fmt.Fprintf(out, " %9.0f\n", r.gomet["edgecache_plugin_instances"])
	}
	fmt.Fprintln(out, "anon − (Go sys − heap released) is memory outside the Go runtime: wazero's compiled code (mmap), cgo-free C libraries none; negative means Go sys counts reserved, untouched pages")
	fmt.Fprintln(out)
}
