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
// the real binary against one shard, its RSS and PSS idle and after
// warming footprintKeys keys of 1 KiB, and where the bytes are, from its
// own Go runtime metrics (the admin /metrics) and /proc.
const (
	footprintKeys = 1000
	// footprintSettle is how long an instance idles before a reading:
	// long enough for startup's garbage to be collected and the
	// background fill of anything lazy to have run.
	footprintSettle = 2 * time.Second
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
		idle, hot, err := footprintOne(ctx, o, s, dir, fmt.Sprintf("fp-%d", i), c.x)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		idle.name, hot.name = c.name+", idle", c.name+", warm"
		rows = append(rows, idle, hot)
	}
	printFootprint(out, rows)
	return nil
}

func footprintOne(ctx context.Context, o benchOpts, s *stack, dir, name string, x extras) (idle, hot footprintRow, err error) {
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(s.edgeYAML(listen, admin, false, x)), 0o644); err != nil {
		return idle, hot, err
	}
	p, err := start(dir, name, "", []string{"EDGECACHE_ADMIN_TOKEN=" + s.token}, filepath.Join(o.bin, "edgecache"), "serve", "--config", cfg)
	if err != nil {
		return idle, hot, err
	}
	defer p.stop()
	if err := p.waitTCP(ctx, listen, 20*time.Second); err != nil {
		return idle, hot, err
	}
	read := func() (footprintRow, error) {
		time.Sleep(footprintSettle)
		r := footprintRow{proc: procMemory(p.pid())}
		r.gomet, err = scrapeMetrics("http://"+admin+"/metrics", s.token)
		return r, err
	}
	if idle, err = read(); err != nil {
		return idle, hot, err
	}
	if err := warm(ctx, listen, footprintKeys, 2); err != nil {
		return idle, hot, fmt.Errorf("warming: %w", err)
	}
	hot, err = read()
	return idle, hot, err
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
