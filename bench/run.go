package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

//go:embed templates
var templates embed.FS

// benchOpts are the flags of `edgebench run`.
type benchOpts struct {
	bin      string
	duration time.Duration
	warmup   time.Duration
	conns    int
	keys     int
	variants []string
	out      string
	profile  bool
	cold     int
	keep     bool
	// plugins is the folder of the example plugins' .wasm (empty, or
	// missing files: the plugin rows are skipped).
	plugins string
	retries int // of a row disturbed by other processes
	rounds  int // of the L1 hit and one-connection rows
	// only runs one part alone: "cold" is the cold start without the
	// throughput tables (no wrk, nginx or Varnish needed). "" runs all.
	only string
	// nginxCache is where nginx keeps its cache files: "memory" (a
	// directory in /dev/shm, tmpfs) or "disk" (the run's directory).
	nginxCache string
}

// disturbed is the share of the servers' CPUs taken by other processes
// above which a row is measured again.
const disturbed = 0.05

// The example plugins the benchmark loads: a key plugin for the "WASM key
// plugin" row (the only key plugin among the examples is the Go one), and
// three non-Go plugins for the cold start and the idle RSS.
const (
	keyPluginFile = "go-stripparams.wasm"
	asPluginFile  = "assemblyscript-misspolicy.wasm"
	cPluginFile   = "c-ttlbystatus.wasm"
	rustPlugin    = "rust-pathttl.wasm"
)

// pluginPath returns the absolute path of an example plugin, or "".
func (o benchOpts) pluginPath(file string) string {
	if o.plugins == "" {
		return ""
	}
	p, err := filepath.Abs(filepath.Join(o.plugins, file))
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// extras are what a benchmark instance's config adds to the base one.
type extras struct {
	products, miss string   // YAML lines under those routes
	top            string   // top-level YAML
	tlsCA          string   // reach the shards' TLS ports, trusting this CA
	server         string   // YAML lines under server (TLS: tls.go)
	shards         []string // the shards to use instead of the stack's (the lone gateway's)
}

// keyPluginExtras make the products route's key hook a WASM plugin.
func (o benchOpts) keyPluginExtras() (extras, bool) {
	p := o.pluginPath(keyPluginFile)
	if p == "" {
		return extras{}, false
	}
	return extras{products: "plugins: [stripparams]\n", top: fmt.Sprintf("plugins:\n  - name: stripparams\n    path: %q\n", p)}, true
}

// threePluginExtras load the three non-Go examples (AssemblyScript miss
// hook, C and Rust response hooks) on the two routes, with the
// compilation cache in cacheDir.
func (o benchOpts) threePluginExtras(cacheDir string) (extras, bool) {
	as, c, rs := o.pluginPath(asPluginFile), o.pluginPath(cPluginFile), o.pluginPath(rustPlugin)
	if as == "" || c == "" || rs == "" {
		return extras{}, false
	}
	return extras{
		products: "plugins: [misspolicy, ttlbystatus]\n",
		miss:     "plugins: [pathttl]\n",
		top: fmt.Sprintf("plugins:\n  - name: misspolicy\n    path: %q\n  - name: ttlbystatus\n    path: %q\n  - name: pathttl\n    path: %q\nwasm:\n  cache_dir: %q\n",
			as, c, rs, cacheDir),
	}, true
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	o := benchOpts{}
	fs.StringVar(&o.bin, "bin", "bin", "directory of the edgecache binary")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "each measured wrk run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "an unmeasured wrk run before each measured one")
	fs.IntVar(&o.conns, "c", 64, "wrk connections")
	fs.IntVar(&o.keys, "keys", 1000, "working set of the 1,000-key workloads")
	variants := fs.String("variants", "shared,pinned", "shared (all on every core), pinned (servers on CPU 0, wrk on CPU 1)")
	fs.StringVar(&o.out, "out", "bench/results", "directory for the results file (empty: none)")
	fs.BoolVar(&o.profile, "profile", true, "profile edgecache's L1 hit path under wrk (pinned) and print pprof -top")
	fs.IntVar(&o.cold, "cold", 5, "cold starts to measure")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of the L1 hit and one-connection rows (every system once per round; the median round is kept, by req/s and by p99)")
	fs.IntVar(&o.retries, "retries", 2, "measure a row again when other processes took over 5% of the servers' CPUs")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	fs.StringVar(&o.nginxCache, "nginx-cache", "memory", "where nginx keeps its cache files: memory (tmpfs, /dev/shm) or disk (the run's directory)")
	fs.StringVar(&o.plugins, "plugins", "plugins/testdata/examples", "folder of the example plugins' .wasm (\"\": no plugin rows)")
	fs.StringVar(&o.only, "only", "", "run one part alone: cold (the cold start), footprint (RSS idle and warm, 1 shard), which need no wrk, nginx or Varnish; miss (the miss CPU rows, -rounds times, interleaved)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.variants = strings.Split(*variants, ",")
	tools := []string{serverBinary(), filepath.Join(o.bin, "edgecache"), filepath.Join(o.bin, "edgebench")}
	switch o.only {
	case "":
		tools = append(tools, "wrk", "nginx", "varnishd", "taskset")
	case "miss":
		tools = append(tools, "wrk", "nginx", "varnishd", "taskset")
	case "cold", "footprint":
		o.variants, o.profile = nil, false
	default:
		return fmt.Errorf("-only %q: the parts that run alone are cold, footprint and miss", o.only)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (bench/run.sh installs and builds what is needed): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "edgebench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}

	var report bytes.Buffer
	out := io.MultiWriter(os.Stdout, &report)
	started := time.Now()
	fmt.Fprintf(out, "edgebench %s — %s, %d CPUs, load average %s\n", started.Format("2006-01-02 15:04"), hostInfo(), numCPU(), loadAvg())
	fmt.Fprintf(out, "each row: wrk -c %d -d %v --latency after a %v warm-up; 1 KiB bodies; origin: examples/origin (demo-origin's handler)\n", o.conns, o.duration, o.warmup)
	fmt.Fprintf(out, "nginx's cache files: %s (-nginx-cache)\n", map[string]string{"memory": "in memory, tmpfs (/dev/shm)", "disk": "on disk, the run's directory"}[o.nginxCache])
	fmt.Fprintf(out, "tools: %s; %s; %s; %s\n\n", toolVersion("wrk", "-v"), toolVersion("nginx", "-v"), toolVersion("varnishd", "-V"), toolVersion(serverBinary(), "--version"))

	all := map[string]*variantResult{}
	for _, v := range o.variants {
		res, err := runVariant(ctx, o, dir, v, out)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v, err)
		}
		all[v] = res
	}
	if o.only == "footprint" {
		return footprint(ctx, o, dir, out)
	}
	if o.only == "miss" {
		fmt.Fprintln(out, "== goals (issue 19, miss rows only)")
		for _, v := range o.variants {
			goals19(v, all[v], func(goal string, ok bool, measured string) {
				fmt.Fprintf(out, "%-62s %-7v %s\n", goal, map[bool]string{true: "met", false: "MISSED"}[ok], measured)
			})
		}
		return nil
	}
	cold, err := coldStart(ctx, o, dir, out)
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	goals(out, o, all, cold)
	if o.profile {
		if err := profileHit(ctx, o, dir, out); err != nil {
			fmt.Fprintf(out, "profile: %v\n", err)
		}
	}
	fmt.Fprintf(out, "\ntotal time %v\n", time.Since(started).Round(time.Second))
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err == nil {
			p := filepath.Join(o.out, started.Format("2006-01-02T1504")+".txt")
			if err := os.WriteFile(p, report.Bytes(), 0o644); err == nil {
				fmt.Printf("results written to %s\n", p)
			}
		}
	}
	return nil
}

// variant is how processes share the two CPUs.
type variant struct {
	name       string
	serverCPUs string // taskset list for every server ("" none)
	wrkCPUs    string
	threads    int // wrk threads
	workers    int // nginx worker processes
}

func variantNamed(name string) (variant, error) {
	switch name {
	case "shared":
		return variant{name: name, threads: 2, workers: numCPU()}, nil
	case "pinned":
		return variant{name: name, serverCPUs: "0", wrkCPUs: "1", threads: 1, workers: 1}, nil
	}
	return variant{}, fmt.Errorf("unknown variant %q (shared, pinned)", name)
}

// row is one measured line of the table.
type row struct {
	workload string
	system   string
	res      wrkResult
	cpu      time.Duration // server CPU per request
	lead     time.Duration // of cpu, the first process's (the gateway's, where its shards are counted too)
	client   float64       // the load generator's CPU during the run, in CPUs (1.0: one CPU busy throughout)
	other    float64       // share of the servers' CPUs used by other processes during the run
	syscalls float64       // read and write system calls per request (/proc/PID/io)
	note     string
}

type variantResult struct {
	v            variant
	rows         []row
	edgeRSS      int64
	missRequests int64
	missOrigin   originCount
}

func (vr *variantResult) find(workload, system string) *row {
	for i := range vr.rows {
		if vr.rows[i].workload == workload && vr.rows[i].system == system {
			return &vr.rows[i]
		}
	}
	return nil
}

// Workload names.
const (
	wlL1     = "L1 hit, 1000 keys"
	wlHot    = "hot key"
	wlOne    = "1 connection, 1000 keys"
	wlL2     = "L2 hit, 1000 keys (no L1)"
	wlL2TLS  = "L2 hit over TLS (no L1)"
	wlMiss   = "miss, 20 ms origin"
	wlPlugin = "L1 hit + WASM key plugin"
)

// stack is every server of one variant.
type stack struct {
	dir        string
	procs      []*proc
	originAddr string
	slowAddr   string
	// the large-body origins (rows19.go); "" in the cold and footprint stacks
	big100kAddr, big1mAddr string
	shardAddrs             []string
	tlsAddrs               []string // the same shards' TLS listeners
	tlsCA                  string
	edge                   map[string]string // instance name → traffic address
	edgePid                map[string]int
	nginxAddr              string
	nginxPid               int
	varnAddr               string
	varnPid                int
	shardPids              []int
	// the lone gateway's own shards: the CPU-per-miss row (rows19.go)
	aloneShardAddrs []string
	aloneShardPids  []int
	slowPid         int
	originPids      []int    // every origin: their CPU is the row's own load, not another tenant's
	cleanup         []func() // after the processes stop
	token           string
	tls             tlsStack // tls.go
}

func (s *stack) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	for _, f := range s.cleanup {
		f()
	}
}

// nginxCacheDir makes the directory of nginx's cache files. In memory
// (the default) it is on tmpfs, as edgecache's and Varnish's caches are in
// memory: nginx then writes and renames a file per miss without the disk,
// whose writeback on this machine's virtual disk otherwise comes and goes
// (miss rows at twice the latency and 3-4x the CPU), and reads its hits
// from the same page cache as before.
func nginxCacheDir(o benchOpts, ndir string) (string, error) {
	switch o.nginxCache {
	case "disk":
		d := filepath.Join(ndir, "cache")
		return d, os.MkdirAll(d, 0o755)
	case "memory", "":
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return "", err
		}
		return os.MkdirTemp("/dev/shm", "edgebench-nginx-cache-")
	}
	return "", fmt.Errorf("-nginx-cache %q: memory or disk", o.nginxCache)
}

// edgeYAML is the config of an edgecache instance of the benchmark.
func (s *stack) edgeYAML(listen, admin string, disableL1 bool, x extras) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: %s\n%sadmin:\n  listen: %s\nlog:\n  level: warn\n  format: json\n", listen, x.server, admin)
	indent := func(y string) {
		for _, l := range strings.Split(strings.TrimRight(y, "\n"), "\n") {
			if l != "" {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "routes:\n  - name: miss\n    host: miss.bench\n    origin: http://%s\n    default_ttl: 1h\n", s.slowAddr)
	indent(x.miss)
	s.bigRoutes(&b) // rows19.go: before products, whose empty host matches every host
	fmt.Fprintf(&b, "  - name: products\n    origin: http://%s\n    default_ttl: 1h\n", s.originAddr)
	indent(x.products)
	b.WriteString("shards:\n")
	shards := s.shardAddrs
	if x.shards != nil {
		shards = x.shards
	}
	for i, a := range shards {
		if x.tlsCA != "" { // same names, so the same placement as the plain instance
			fmt.Fprintf(&b, "  - { name: shard-%c, addr: %q, tls: { ca_file: %q } }\n", 'a'+i, s.tlsAddrs[i], x.tlsCA)
			continue
		}
		fmt.Fprintf(&b, "  - { name: shard-%c, addr: %q }\n", 'a'+i, a)
	}
	fmt.Fprintf(&b, "valkey:\n  disable_l1: %v\n", disableL1)
	b.WriteString(x.top)
	return b.String()
}

func (s *stack) startEdge(ctx context.Context, name, cpus string, disableL1 bool, x extras) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(s.dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(s.edgeYAML(listen, admin, disableL1, x)), 0o644); err != nil {
		return err
	}
	p, err := start(s.dir, name, cpus, []string{"EDGECACHE_ADMIN_TOKEN=" + s.token}, filepath.Join(benchBin, "edgecache"), "serve", "--config", cfg)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	if err := p.waitTCP(ctx, listen, 20*time.Second); err != nil {
		return err
	}
	s.edge[name], s.edgePid[name] = listen, p.pid()
	return nil
}

var benchBin = "bin"

// startShard starts a Valkey (or Redis) server on a free loopback port,
// and on a TLS port too when ca is not nil; it returns both addresses
// ("" without TLS) and its pid.
func (s *stack) startShard(ctx context.Context, name, cpus string, ca *valkeytest.CA) (addr, tlsAddr string, pid int, err error) {
	port, err := freePort()
	if err != nil {
		return "", "", 0, err
	}
	sdir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return "", "", 0, err
	}
	args := []string{serverBinary(), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", sdir}
	if ca != nil {
		tlsPort, err := freePort()
		if err != nil {
			return "", "", 0, err
		}
		args = append(args, ca.ServerArgs(tlsPort)...)
		tlsAddr = "127.0.0.1:" + strconv.Itoa(tlsPort)
	}
	p, err := start(s.dir, name, cpus, nil, args...)
	if err != nil {
		return "", "", 0, err
	}
	s.procs = append(s.procs, p)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitTCP(ctx, addr, 10*time.Second); err != nil {
		return "", "", 0, err
	}
	return addr, tlsAddr, p.pid(), nil
}

func startStack(ctx context.Context, o benchOpts, dir string, v variant) (*stack, error) {
	benchBin = o.bin
	s := &stack{dir: dir, edge: map[string]string{}, edgePid: map[string]int{}, token: randomHex()}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	self := filepath.Join(o.bin, "edgebench")
	var err error
	for _, or := range []struct {
		name    string
		latency string
		addr    *string
		body    int
	}{{"origin", "0s", &s.originAddr, 1024}, {"origin-slow", "20ms", &s.slowAddr, 1024},
		{"origin-100k", "0s", &s.big100kAddr, bigBodies[0].bytes}, {"origin-1m", "0s", &s.big1mAddr, bigBodies[1].bytes}} {
		if *or.addr, err = freeAddr(); err != nil {
			return nil, err
		}
		p, err := start(dir, or.name, v.serverCPUs, nil, self, "origin", "-listen", *or.addr, "-latency", or.latency, "-body-bytes", strconv.Itoa(or.body))
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.originPids = append(s.originPids, p.pid())
		if or.addr == &s.slowAddr {
			s.slowPid = p.pid()
		}
		if err := p.waitTCP(ctx, *or.addr, 10*time.Second); err != nil {
			return nil, err
		}
	}
	// Each shard also listens on TLS, for the L2-over-TLS row: the same
	// servers and entries, only the transport differs.
	ca, err := valkeytest.MakeCA(dir)
	if err != nil {
		return nil, err
	}
	s.tlsCA = ca.CAFile
	for i := range 3 {
		addr, tlsAddr, pid, err := s.startShard(ctx, fmt.Sprintf("shard-%d", i), v.serverCPUs, ca)
		if err != nil {
			return nil, err
		}
		s.shardAddrs = append(s.shardAddrs, addr)
		s.tlsAddrs = append(s.tlsAddrs, tlsAddr)
		s.shardPids = append(s.shardPids, pid)
	}
	if err := s.startEdge(ctx, "edgecache", v.serverCPUs, false, extras{}); err != nil {
		return nil, err
	}
	if err := s.startEdge(ctx, "edgecache-l2", v.serverCPUs, true, extras{}); err != nil {
		return nil, err
	}
	if err := s.startEdge(ctx, "edgecache-l2tls", v.serverCPUs, true, extras{tlsCA: s.tlsCA}); err != nil {
		return nil, err
	}
	if x, ok := o.keyPluginExtras(); ok {
		if err := s.startEdge(ctx, "edgecache-plugin", v.serverCPUs, false, x); err != nil {
			return nil, err
		}
	}
	// The CPU-per-miss row's gateway has 3 shards of its own, as nginx has
	// its cache directory: alone on them, it takes no fill lock (see
	// shardmap/peers.go), as a gateway that is a POP's only one does not.
	// The same row on the shared shards, where the other instances are
	// peers and every miss takes the lock, is measured too (rows19.go).
	for i := range 3 {
		addr, _, pid, err := s.startShard(ctx, fmt.Sprintf("alone-shard-%d", i), v.serverCPUs, nil)
		if err != nil {
			return nil, err
		}
		s.aloneShardAddrs = append(s.aloneShardAddrs, addr)
		s.aloneShardPids = append(s.aloneShardPids, pid)
	}
	if err := s.startEdge(ctx, "edgecache-alone", v.serverCPUs, false, extras{shards: s.aloneShardAddrs}); err != nil {
		return nil, err
	}

	// nginx
	ndir := filepath.Join(dir, "nginx")
	cacheDir, err := nginxCacheDir(o, ndir)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cacheDir, ndir) {
		s.cleanup = append(s.cleanup, func() { _ = os.RemoveAll(cacheDir) })
	}
	if s.nginxAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	_, nport, _ := strings.Cut(s.nginxAddr, ":")
	_, oport, _ := strings.Cut(s.originAddr, ":")
	nconf := filepath.Join(ndir, "nginx.conf")
	tlsData, err := s.prepareTLS(ctx, v) // tls.go: the TLS edgecache and nginx's TLS port
	if err != nil {
		return nil, err
	}
	if err := render("templates/nginx.conf.tmpl", nconf, mergeData(mergeData(map[string]any{"Dir": ndir, "CacheDir": cacheDir, "Workers": v.workers, "Port": nport, "OriginPort": oport}, s.bigTemplateData()), tlsData)); err != nil {
		return nil, err
	}
	p, err := start(dir, "nginx", v.serverCPUs, nil, "nginx", "-p", ndir, "-c", nconf, "-e", filepath.Join(ndir, "error.log"))
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	if err := p.waitTCP(ctx, s.nginxAddr, 10*time.Second); err != nil {
		return nil, err
	}
	s.nginxPid = p.pid()

	// Varnish: malloc storage, foreground, no jail (we may run as root),
	// one thread pool per CPU it runs on (Varnish's tuning advice).
	vdir := filepath.Join(dir, "varnish")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return nil, err
	}
	if s.varnAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	vcl := filepath.Join(dir, "default.vcl")
	if err := render("templates/varnish.vcl.tmpl", vcl, mergeData(map[string]any{"OriginPort": oport}, s.bigTemplateData())); err != nil {
		return nil, err
	}
	p, err = start(dir, "varnish", v.serverCPUs, nil, "varnishd", "-F", "-a", s.varnAddr, "-f", vcl,
		"-s", "malloc,256m", "-n", vdir, "-j", "none", "-p", "thread_pools="+strconv.Itoa(v.workers))
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	if err := p.waitTCP(ctx, s.varnAddr, 30*time.Second); err != nil {
		return nil, err
	}
	s.varnPid = p.pid()
	ok = true
	return s, nil
}

func render(name, dst string, data any) error {
	t, err := template.ParseFS(templates, name)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.Execute(f, data)
}

// medianRound is the median of one system's rounds of a row, by req/s
// or (byP99) by p99, with the range of that figure in its note.
func medianRound(rs []row, byP99 bool) row {
	if byP99 {
		slices.SortFunc(rs, func(a, b row) int { return cmp.Compare(a.res.P99, b.res.P99) })
	} else {
		slices.SortFunc(rs, func(a, b row) int { return cmp.Compare(a.res.RPS, b.res.RPS) })
	}
	med := rs[len(rs)/2]
	switch {
	case len(rs) == 1:
	case byP99:
		med.note = strings.TrimSpace(med.note + fmt.Sprintf(" median p99 of %d rounds (%s–%s)", len(rs), fmtDur(rs[0].res.P99), fmtDur(rs[len(rs)-1].res.P99)))
	default:
		med.note = strings.TrimSpace(med.note + fmt.Sprintf(" median of %d rounds (%.0f–%.0f req/s)", len(rs), rs[0].res.RPS, rs[len(rs)-1].res.RPS))
	}
	return med
}

// warm requests every key rounds times, one at a time: edgecache needs a
// miss, then an L2 read that fills the L1, then L1 hits.
func warm(ctx context.Context, addr string, keys, rounds int) error {
	return warmCoded(ctx, addr, keys, rounds, "gzip") // what Go's client asks for by itself (footprint.go)
}

func runVariant(ctx context.Context, o benchOpts, root string, name string, out io.Writer) (*variantResult, error) {
	v, err := variantNamed(name)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := startStack(ctx, o, dir, v)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	for _, a := range []string{s.edge["edgecache"], s.edge["edgecache-l2"], s.edge["edgecache-l2tls"], s.nginxAddr, s.varnAddr} {
		if err := warm(ctx, a, o.keys, 3); err != nil {
			return nil, err
		}
	}
	if a, ok := s.edge["edgecache-plugin"]; ok {
		if err := warm(ctx, a, o.keys, 3); err != nil {
			return nil, err
		}
	}
	vr := &variantResult{v: v}
	scripts := filepath.Join(root, "lua")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return nil, err
	}
	for _, n := range []string{"keys.lua", "miss.lua"} {
		b, _ := templates.ReadFile("templates/" + n)
		if err := os.WriteFile(filepath.Join(scripts, n), b, 0o644); err != nil {
			return nil, err
		}
	}
	keysEnv := []string{"BENCH_KEYS=" + strconv.Itoa(o.keys)}
	// measureOnce runs one row; measure retries a row that another
	// tenant's load disturbed (other above 5%), keeping the least
	// disturbed attempt.
	measureOnce := func(workload, system, addr string, pids []int, w wrkRun) (row, error) {
		if w.Scheme == "" {
			w.Scheme = "http"
		}
		w.URL = w.Scheme + "://" + addr + w.URL
		w.CPUs, w.Duration = v.wrkCPUs, o.warmup
		if w.Threads == 0 {
			w.Threads = v.threads
		}
		if w.Conns == 0 {
			w.Conns = o.conns
		}
		if o.warmup > 0 {
			if _, _, err := w.run(ctx); err != nil {
				return row{}, err
			}
		}
		w.Duration = o.duration
		// The origins answer the row's misses on the servers' CPUs: their
		// CPU is the row's own load, left out of CPU/req (unless pids
		// counts it) and out of "other".
		origins := slices.DeleteFunc(slices.Clone(s.originPids), func(p int) bool { return slices.Contains(pids, p) })
		c0, err := sampleCPU(pids, origins)
		if err != nil {
			return row{}, err
		}
		io0 := sumIO(pids)
		busy0, err := cpuBusy(v.serverCPUs)
		if err != nil {
			return row{}, err
		}
		t0 := time.Now()
		r, _, err := w.run(ctx)
		if err != nil {
			return row{}, err
		}
		elapsed := time.Since(t0)
		c1, err := sampleCPU(pids, origins)
		if err != nil {
			return row{}, err
		}
		busy1, _ := cpuBusy(v.serverCPUs)
		rw := row{workload: workload, system: system, res: r}
		if r.Requests > 0 {
			rw.cpu = (c1.all - c0.all) / time.Duration(r.Requests)
			rw.lead = (c1.lead - c0.lead) / time.Duration(r.Requests)
			rw.syscalls = float64(sumIO(pids)-io0) / float64(r.Requests)
		}
		// What else ran on the servers' CPUs meanwhile: another tenant's
		// load makes a row unreliable, and this says how much.
		other := busy1 - busy0 - (c1.all - c0.all) - (c1.origins - c0.origins)
		ncpu := numCPU()
		if v.serverCPUs == "" {
			other -= r.CPU // wrk shares the CPUs in this variant
		} else {
			ncpu = 1
		}
		rw.other = max(float64(other)/float64(elapsed*time.Duration(ncpu)), 0)
		rw.client = float64(r.CPU) / float64(elapsed)
		if r.Non2xx > 0 || r.SockErrs > 0 {
			rw.note = fmt.Sprintf("%d non-2xx, %d socket errors", r.Non2xx, r.SockErrs)
		}
		fmt.Fprintf(os.Stderr, "  %-8s %-28s %-18s %9.0f req/s  p50 %-9v p99 %-9v cpu/req %v other %.0f%% %s\n", name, workload, system, r.RPS, r.P50, r.P99, rw.cpu, rw.other*100, rw.note)
		return rw, nil
	}
	measureRow := func(workload, system, addr string, pids []int, w wrkRun) (row, error) {
		var best row
		for attempt := 0; attempt <= o.retries; attempt++ {
			rw, err := measureOnce(workload, system, addr, pids, w)
			if err != nil {
				return row{}, err
			}
			if attempt == 0 || rw.other < best.other {
				best = rw
			}
			if best.other <= disturbed || workload == wlMiss { // a miss row cannot be repeated: its origin count spans the run
				break
			}
		}
		if best.other > disturbed {
			best.note = strings.TrimSpace(best.note + fmt.Sprintf(" DISTURBED: other processes used %.0f%% of the servers' CPUs", best.other*100))
		}
		return best, nil
	}
	measure := func(workload, system, addr string, pids []int, w wrkRun) error {
		rw, err := measureRow(workload, system, addr, pids, w)
		vr.rows = append(vr.rows, rw)
		return err
	}
	systems := []benchSystem{
		{"edgecache", s.edge["edgecache"], []int{s.edgePid["edgecache"]}},
		{"nginx", s.nginxAddr, []int{s.nginxPid}},
		{"varnish", s.varnAddr, []int{s.varnPid}},
	}
	fmt.Fprintf(os.Stderr, "variant %s: load average %s\n", name, loadAvg())
	if o.only == "miss" {
		for round := range max(o.rounds, 1) {
			if err := s.missRows(scripts, systems, round, measure); err != nil {
				return nil, err
			}
		}
		vr.rows = medianCPU(vr.rows)
		printVariant(out, o, vr)
		return vr, nil
	}
	for _, wl := range []struct {
		name string
		w    wrkRun
	}{
		{wlL1, wrkRun{URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: keysEnv}},
		{wlHot, wrkRun{URL: "/products/1"}},
		{wlOne, wrkRun{URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: keysEnv, Threads: 1, Conns: 1}},
	} {
		if wl.name == wlL1 || wl.name == wlOne {
			// The goals' rows: every system once per round, o.rounds
			// rounds, each system's median round kept. The host's own
			// noise comes and goes over seconds; adjacent rows see the
			// same, and the median drops a round it spoiled. The L1 rows
			// are ranked by req/s; the one-connection row by p99, the
			// figure its goal reads (a single 10 s run's p99 is the few
			// slowest milliseconds of it, for every system alike).
			type entry struct {
				workload, system, addr string
				pids                   []int
			}
			var all []entry
			for i, sys := range systems {
				all = append(all, entry{wl.name, sys.name, sys.addr, sys.pids})
				if a, ok := s.edge["edgecache-plugin"]; ok && i == 0 && wl.name == wlL1 {
					all = append(all, entry{wlPlugin, "edgecache", a, []int{s.edgePid["edgecache-plugin"]}})
				}
			}
			got := make([][]row, len(all))
			for range max(o.rounds, 1) {
				for i, e := range all {
					rw, err := measureRow(e.workload, e.system, e.addr, e.pids, wl.w)
					if err != nil {
						return nil, err
					}
					got[i] = append(got[i], rw)
				}
			}
			for i := range all {
				vr.rows = append(vr.rows, medianRound(got[i], wl.name == wlOne))
			}
			if wl.name == wlL1 {
				if rs, err := rss(s.edgePid["edgecache"]); err == nil {
					vr.edgeRSS = rs
				}
			}
			continue
		}
		for _, sys := range systems { // interleaved, so that a neighbour's load hits all three alike
			if err := measure(wl.name, sys.name, sys.addr, sys.pids, wl.w); err != nil {
				return nil, err
			}
		}
	}
	// The compressed hit, against nginx with gzip on (compress.go).
	crows, err := compressedRows(ctx, s, keysEnv, scripts)
	if err != nil {
		return nil, err
	}
	for _, r := range crows {
		if err := measure(r.workload, r.system, r.addr, r.pids, r.w); err != nil {
			return nil, err
		}
	}
	// L2 hits plain, then over TLS to the same shards, back to back.
	for _, l2 := range []struct{ workload, instance string }{{wlL2, "edgecache-l2"}, {wlL2TLS, "edgecache-l2tls"}} {
		pids := append([]int{s.edgePid[l2.instance]}, s.shardPids...)
		if err := measure(l2.workload, "edgecache", s.edge[l2.instance], pids,
			wrkRun{URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: keysEnv}); err != nil {
			return nil, err
		}
	}
	// The miss path: a new key per request, the origin 20 ms away.
	before, err := fetchOriginCount(s.slowAddr)
	if err != nil {
		return nil, err
	}
	missEnv := []string{"BENCH_MISS_BASE=" + strconv.FormatInt(time.Now().Unix()%10000*100000000, 10)}
	saved := o.warmup
	o.warmup = 0 // every request is a new key anyway
	err = measure(wlMiss, "edgecache", s.edge["edgecache"], append([]int{s.edgePid["edgecache"], s.slowPid}, s.shardPids...),
		wrkRun{URL: "/", Script: filepath.Join(scripts, "miss.lua"), Env: missEnv, Header: []string{"Host: miss.bench"}})
	o.warmup = saved
	if err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // requests wrk cut off at its deadline finish at the origin
	after, err := fetchOriginCount(s.slowAddr)
	if err != nil {
		return nil, err
	}
	vr.missRequests = vr.find(wlMiss, "edgecache").res.Requests
	vr.missOrigin = originCount{Requests: after.Requests - before.Requests, Distinct: after.Distinct - before.Distinct}
	if err := s.rows19(o, scripts, systems, measure); err != nil { // rows19.go
		return nil, err
	}
	if s.edge["edgecache-tls"] != "" { // tls.go
		for _, r := range tlsRows(s, keysEnv, scripts) {
			if err := measure(r.workload, r.system, r.addr, r.pids, r.w); err != nil {
				return nil, err
			}
		}
	}
	printVariant(out, o, vr)
	return vr, nil
}

func sumIO(pids []int) int64 {
	var n int64
	for _, p := range pids {
		n += ioCalls(p)
	}
	return n
}

// cpuSample is one reading of a row's CPU counters: all its servers', the
// first (lead) server's, and the origins'.
type cpuSample struct{ all, lead, origins time.Duration }

func sampleCPU(pids, origins []int) (c cpuSample, err error) {
	if c.all, err = sumCPU(pids); err != nil {
		return c, err
	}
	if c.lead, err = sumCPU(pids[:1]); err != nil {
		return c, err
	}
	c.origins, err = sumCPU(origins)
	return c, err
}

func sumCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, p := range pids {
		c, err := cpuTime(p)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

func printVariant(out io.Writer, o benchOpts, vr *variantResult) {
	v := vr.v
	desc := "all processes share every CPU"
	if v.serverCPUs != "" {
		desc = fmt.Sprintf("servers on CPU %s, wrk on CPU %s (taskset)", v.serverCPUs, v.wrkCPUs)
	}
	fmt.Fprintf(out, "== %s: %s; wrk -t %d; nginx %d worker(s); load average at the end %s\n", v.name, desc, v.threads, v.workers, loadAvg())
	fmt.Fprintf(out, "%-27s %-10s %10s %9s %9s %9s %7s %10s %10s %6s %6s  %s\n", "workload", "system", "req/s", "p50", "p99", "CPU/req", "rw/req", "vs nginx", "vs varnish", "other", "client", "note")
	for _, r := range vr.rows {
		vsN, vsV := "", ""
		if r.system == "edgecache" {
			base := r.workload
			if r.workload == wlL2 || r.workload == wlL2TLS || r.workload == wlPlugin {
				base = wlL1
			}
			if n := vr.find(base, "nginx"); n != nil && n.res.RPS > 0 {
				vsN = fmt.Sprintf("%.2fx", r.res.RPS/n.res.RPS)
			}
			if vv := vr.find(base, "varnish"); vv != nil && vv.res.RPS > 0 {
				vsV = fmt.Sprintf("%.2fx", r.res.RPS/vv.res.RPS)
			}
			if r.workload == wlOne {
				if n := vr.find(base, "nginx"); n != nil {
					vsN = fmt.Sprintf("p50 %.2fx", float64(r.res.P50)/float64(n.res.P50))
				}
				if vv := vr.find(base, "varnish"); vv != nil {
					vsV = fmt.Sprintf("p50 %.2fx", float64(r.res.P50)/float64(vv.res.P50))
				}
			}
		}
		note := r.note
		if r.workload == wlMiss {
			vsN, vsV = "", ""
			note = strings.TrimSpace(fmt.Sprintf("%s origin requests %d for %d distinct keys; wrk completed %d; CPU/req includes the origin and the shards", note, vr.missOrigin.Requests, vr.missOrigin.Distinct, vr.missRequests))
		}
		if r.workload == wlL2 {
			note = strings.TrimSpace(note + " CPU/req includes the 3 shards; vs the L1 rows of nginx/varnish")
		}
		note = strings.TrimSpace(note + " " + bigNote(r)) // rows19.go
		if r.workload == wlL2TLS {
			if p := vr.find(wlL2, "edgecache"); p != nil && p.res.RPS > 0 {
				note = strings.TrimSpace(fmt.Sprintf("%s %.2fx the plain L2 row;", note, r.res.RPS/p.res.RPS))
			}
			note = strings.TrimSpace(note + " same shards on their TLS port; CPU/req includes the 3 shards")
		}
		fmt.Fprintf(out, "%-27s %-10s %10.0f %9s %9s %9s %7.2f %10s %10s %5.0f%% %6.2f  %s\n", r.workload, r.system, r.res.RPS, fmtDur(r.res.P50), fmtDur(r.res.P99), fmtDur(r.cpu), r.syscalls, vsN, vsV, r.other*100, r.client, note)
	}
	if _, ok := o.keyPluginExtras(); !ok {
		fmt.Fprintf(out, "%-27s %-10s %10s  not run: no %s in -plugins %q\n", wlPlugin, "edgecache", "-", keyPluginFile, o.plugins)
	}
	fmt.Fprintf(out, "edgecache RSS after its L1 run: %.1f MiB\n", float64(vr.edgeRSS)/(1<<20))
	fmt.Fprintf(out, "rw/req: read and write system calls of the server per request (/proc/PID/io syscr+syscw; epoll and others not counted)\n")
	fmt.Fprintf(out, "other: the share of the servers' CPUs (shared: both, less wrk; pinned: CPU 0) that other processes used during the row (the origins, which answer the row's misses, are its own load, not counted)\n")
	client := "client: the CPUs the load generator (wrk, h2load) kept busy during the row"
	if v.wrkCPUs != "" {
		client += fmt.Sprintf("; it has CPU %s alone, so near 1.00 the client set the pace, not the server", v.wrkCPUs)
	}
	fmt.Fprintf(out, "%s\n\n", client)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// coldResult is the cold-start measurement.
type coldResult struct {
	plain, emptyCache, warmCache []time.Duration
	idleRSS                      int64
	pluginRSS                    int64
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// coldStart times `edgecache serve` from exec to its first 200 (polled
// every 2 ms), against 3 running shards and a warm entry; and reads its
// RSS after a second of idling.
func coldStart(ctx context.Context, o benchOpts, root string, out io.Writer) (*coldResult, error) {
	dir := filepath.Join(root, "cold")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	v := variant{name: "cold", threads: 1, workers: 1}
	s, err := startStackMinimal(ctx, o, dir, v)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	res := &coldResult{}
	once := func(name string, x extras) (time.Duration, int64, error) {
		listen, _ := freeAddr()
		admin, _ := freeAddr()
		cfg := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfg, []byte(s.edgeYAML(listen, admin, false, x)), 0o644); err != nil {
			return 0, 0, err
		}
		t0 := time.Now()
		p, err := start(dir, name, "", []string{"EDGECACHE_ADMIN_TOKEN=" + s.token}, filepath.Join(o.bin, "edgecache"), "serve", "--config", cfg)
		if err != nil {
			return 0, 0, err
		}
		defer p.stop()
		t1, err := p.waitHTTP200(ctx, "http://"+listen+"/products/1", 20*time.Second, 2*time.Millisecond)
		if err != nil {
			return 0, 0, err
		}
		time.Sleep(time.Second)
		r, _ := rss(p.pid())
		return t1.Sub(t0), r, nil
	}
	for i := range o.cold + 1 {
		d, r, err := once(fmt.Sprintf("cold-%d", i), extras{})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			continue // the first run fills the entry and the page cache
		}
		res.plain = append(res.plain, d)
		res.idleRSS = max(res.idleRSS, r)
	}
	fmt.Fprintf(out, "== cold start: exec to first 200 (GET of a cached key, 3 shards), %d runs\n", o.cold)
	fmt.Fprintf(out, "no plugins:                 median %s (min %s, max %s); idle RSS %.1f MiB\n",
		fmtDur(median(res.plain)), fmtDur(slicesMin(res.plain)), fmtDur(slicesMax(res.plain)), float64(res.idleRSS)/(1<<20))
	cacheDir := filepath.Join(dir, "wasm-cache")
	x, ok := o.threePluginExtras(cacheDir)
	if !ok {
		fmt.Fprintf(out, "3 WASM plugins:             not run: the non-Go example plugins are not in -plugins %q\n\n", o.plugins)
		return res, nil
	}
	for i := range o.cold {
		_ = os.RemoveAll(cacheDir)
		d, _, err := once(fmt.Sprintf("cold-empty-%d", i), x)
		if err != nil {
			return nil, err
		}
		res.emptyCache = append(res.emptyCache, d)
	}
	for i := range o.cold {
		d, r, err := once(fmt.Sprintf("cold-warm-%d", i), x)
		if err != nil {
			return nil, err
		}
		res.warmCache = append(res.warmCache, d)
		res.pluginRSS = max(res.pluginRSS, r)
	}
	fmt.Fprintf(out, "3 plugins (AssemblyScript, C, Rust), empty compilation cache: median %s (min %s, max %s)\n",
		fmtDur(median(res.emptyCache)), fmtDur(slicesMin(res.emptyCache)), fmtDur(slicesMax(res.emptyCache)))
	fmt.Fprintf(out, "3 plugins (AssemblyScript, C, Rust), warm compilation cache:  median %s (min %s, max %s); idle RSS %.1f MiB\n\n",
		fmtDur(median(res.warmCache)), fmtDur(slicesMin(res.warmCache)), fmtDur(slicesMax(res.warmCache)), float64(res.pluginRSS)/(1<<20))
	return res, nil
}

func slicesMin(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func slicesMax(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// startStackMinimal starts the origin and the shards only.
func startStackMinimal(ctx context.Context, o benchOpts, dir string, v variant) (*stack, error) {
	return startStackShards(ctx, o, dir, 3)
}

// startStackShards starts the origin and n shards.
func startStackShards(ctx context.Context, o benchOpts, dir string, n int) (*stack, error) {
	s := &stack{dir: dir, edge: map[string]string{}, edgePid: map[string]int{}, token: randomHex()}
	var err error
	if s.originAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	s.slowAddr = s.originAddr
	p, err := start(dir, "origin", "", nil, filepath.Join(o.bin, "edgebench"), "origin", "-listen", s.originAddr)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	if err := p.waitTCP(ctx, s.originAddr, 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	for i := range n {
		port, err := freePort()
		if err != nil {
			s.stop()
			return nil, err
		}
		sdir := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		_ = os.MkdirAll(sdir, 0o755)
		p, err := start(dir, fmt.Sprintf("shard-%d", i), "", nil, serverBinary(), "--port", strconv.Itoa(port),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", sdir)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := p.waitTCP(ctx, addr, 10*time.Second); err != nil {
			s.stop()
			return nil, err
		}
		s.shardAddrs = append(s.shardAddrs, addr)
	}
	return s, nil
}

// goals checks the benchmark targets against the measured rows.
func goals(out io.Writer, o benchOpts, all map[string]*variantResult, cold *coldResult) {
	if _, ok := o.keyPluginExtras(); ok {
		fmt.Fprintln(out, "== goals (issue 7); L1 hit goals use the row with the WASM key plugin active")
	} else {
		fmt.Fprintln(out, "== goals (issue 7); no WASM key plugin was available: L1 hit goals use the plain L1 row")
	}
	check := func(goal string, ok bool, measured string) {
		verdict := "met"
		if !ok {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "%-62s %-7s %s\n", goal, verdict, measured)
	}
	l1 := wlL1
	if _, ok := o.keyPluginExtras(); ok {
		l1 = wlPlugin
	}
	rowRatio := func(vr *variantResult, sys string) (float64, bool) {
		e, b := vr.find(l1, "edgecache"), vr.find(wlL1, sys)
		if e == nil || b == nil || b.res.RPS == 0 {
			return 0, false
		}
		return e.res.RPS / b.res.RPS, true
	}
	if vr := all["pinned"]; vr != nil {
		if r, ok := rowRatio(vr, "nginx"); ok {
			check("pinned L1 hit throughput >= 1.0x nginx", r >= 1.0, fmt.Sprintf("%.2fx", r))
		}
		if r, ok := rowRatio(vr, "varnish"); ok {
			check("pinned L1 hit throughput >= 1.5x Varnish", r >= 1.5, fmt.Sprintf("%.2fx", r))
		}
	}
	if vr := all["shared"]; vr != nil {
		for _, sys := range []string{"nginx", "varnish"} {
			if r, ok := rowRatio(vr, sys); ok {
				check("shared L1 hit throughput >= 1.0x "+sys, r >= 1.0, fmt.Sprintf("%.2fx", r))
			}
		}
	}
	for _, name := range []string{"pinned", "shared"} {
		vr := all[name]
		if vr == nil {
			continue
		}
		e, n := vr.find(l1, "edgecache"), vr.find(wlL1, "nginx")
		if e != nil && n != nil {
			check(name+": L1 hit p99 within 1.5x nginx's", float64(e.res.P99) <= 1.5*float64(n.res.P99),
				fmt.Sprintf("%s vs %s (%.2fx)", fmtDur(e.res.P99), fmtDur(n.res.P99), float64(e.res.P99)/float64(n.res.P99)))
			check(name+": server CPU per hit <= nginx's", e.cpu <= n.cpu,
				fmt.Sprintf("%s vs %s (%.2fx)", fmtDur(e.cpu), fmtDur(n.cpu), float64(e.cpu)/float64(n.cpu)))
		}
		e1, n1 := vr.find(wlOne, "edgecache"), vr.find(wlOne, "nginx")
		if e1 != nil && n1 != nil {
			check(name+": one-connection hit p50 <= nginx's", e1.res.P50 <= n1.res.P50,
				fmt.Sprintf("%s vs %s", fmtDur(e1.res.P50), fmtDur(n1.res.P50)))
			// Issue 19's tail goal: the row's p99 is the median of its rounds.
			check(name+": one-connection hit p99 <= nginx's", e1.res.P99 <= n1.res.P99,
				fmt.Sprintf("%s vs %s (%.2fx)", fmtDur(e1.res.P99), fmtDur(n1.res.P99), float64(e1.res.P99)/float64(n1.res.P99)))
		}
		if r, ok := func() (float64, bool) {
			e, b := vr.find(wlL2, "edgecache"), vr.find(wlL1, "nginx")
			if e == nil || b == nil || b.res.RPS == 0 {
				return 0, false
			}
			return e.res.RPS / b.res.RPS, true
		}(); ok {
			check(name+": L2 hit (no L1) >= 0.7x nginx", r >= 0.7, fmt.Sprintf("%.2fx", r))
		}
		tlsGoals(name, vr, check) // tls.go
		goals19(name, vr, check)  // rows19.go
		if vr.missOrigin.Distinct > 0 {
			one := vr.missOrigin.Requests == int64(vr.missOrigin.Distinct)
			check(name+": miss path sends one origin request per key", one,
				fmt.Sprintf("%d origin requests for %d distinct keys (wrk completed %d)", vr.missOrigin.Requests, vr.missOrigin.Distinct, vr.missRequests))
		}
	}
	if cold != nil {
		if len(cold.warmCache) > 0 {
			check("cold start, 3 plugins, warm compilation cache < 100 ms", median(cold.warmCache) < 100*time.Millisecond, fmtDur(median(cold.warmCache)))
			check("idle RSS with 3 plugins < 60 MiB", cold.pluginRSS < 60<<20, fmt.Sprintf("%.1f MiB", float64(cold.pluginRSS)/(1<<20)))
		} else {
			check("cold start < 100 ms (no plugins: none configured)", median(cold.plain) < 100*time.Millisecond, fmtDur(median(cold.plain)))
			check("idle RSS < 60 MiB (no plugins: none configured)", cold.idleRSS < 60<<20, fmt.Sprintf("%.1f MiB", float64(cold.idleRSS)/(1<<20)))
		}
	}
	fmt.Fprintln(out)
}

// profileHit serves the gateway in-process (edgebench gateway) pinned to
// CPU 0 with a CPU profile, runs the L1 hit workload from CPU 1, and prints
// pprof's top functions.
func profileHit(ctx context.Context, o benchOpts, root string, out io.Writer) error {
	dir := filepath.Join(root, "profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v, _ := variantNamed("pinned")
	s, err := startStackMinimal(ctx, o, dir, v)
	if err != nil {
		return err
	}
	defer s.stop()
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(s.edgeYAML(listen, admin, false, extras{})), 0o644); err != nil {
		return err
	}
	prof := filepath.Join(dir, "cpu.pprof")
	self := filepath.Join(o.bin, "edgebench")
	p, err := start(dir, "gateway", v.serverCPUs, nil, self, "gateway", "-config", cfg, "-cpuprofile", prof)
	if err != nil {
		return err
	}
	if err := p.waitTCP(ctx, listen, 20*time.Second); err != nil {
		p.stop()
		return err
	}
	if err := warm(ctx, listen, o.keys, 3); err != nil {
		p.stop()
		return err
	}
	script := filepath.Join(root, "lua", "keys.lua")
	r, _, err := wrkRun{URL: "http://" + listen + "/", Threads: v.threads, Conns: o.conns, Duration: o.duration,
		Script: script, CPUs: v.wrkCPUs, Env: []string{"BENCH_KEYS=" + strconv.Itoa(o.keys)}}.run(ctx)
	p.stop()
	if err != nil {
		return err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", self, prof).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pprof: %w\n%s", err, top)
	}
	cum, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=25", self, prof).CombinedOutput()
	fmt.Fprintf(out, "== pprof: edgebench gateway (gateway.New + Serve, as edgecache serve) pinned to CPU 0, L1 hits from wrk on CPU 1: %.0f req/s\n", r.RPS)
	fmt.Fprintf(out, "%s\n-- by cumulative time --\n%s\n", top, cum)
	if o.keep {
		fmt.Fprintf(out, "profile kept at %s\n", prof)
	}
	return nil
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return max(n, 1)
}

func hostInfo() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

func toolVersion(name string, flag string) string {
	out, err := exec.Command(name, flag).CombinedOutput()
	if err != nil && len(out) == 0 {
		return name + " ?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
