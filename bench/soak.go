package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soakOpts are the flags of `edgebench soak`.
type soakOpts struct {
	bin      string
	duration time.Duration
	every    time.Duration
	rate     int
	workers  int
	keys     int
	unique   float64
	keep     bool
}

// The soak holds a steady, rate-limited load on a gateway with 3 shards
// and, every minute, rewrites its config file (the watcher reloads it:
// route TTL and a shard's weight alternate, so keys move) and kills one
// shard and starts it again on its port (it comes back empty). It prints
// a line per minute and a summary: failed requests against a budget of
// zero, and memory growth from the end of the first minute (the cache is
// warm by then) to the end: RSS from /proc, Go heap and goroutines from
// the admin /metrics.
func runSoak(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o := soakOpts{}
	fs.StringVar(&o.bin, "bin", "bin", "directory of the edgecache binary")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs")
	fs.DurationVar(&o.every, "every", time.Minute, "how often the config is reloaded and a shard restarted")
	fs.IntVar(&o.rate, "rate", 2000, "requests per second (total)")
	fs.IntVar(&o.workers, "workers", 16, "concurrent clients")
	fs.IntVar(&o.keys, "keys", 10000, "working set")
	fs.Float64Var(&o.unique, "unique", 0.02, "fraction of requests for a key never asked before")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.duration > 24*time.Hour || o.rate <= 0 || o.workers <= 0 {
		return errors.New("want a duration under 24h and a positive rate and worker count")
	}
	dir, err := os.MkdirTemp("", "edgesoak-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}

	// The origin, in-process.
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	orig := newCountingOrigin(0, 1024)
	osrv := &http.Server{Handler: orig, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = osrv.Serve(oln) }()
	defer osrv.Close()

	// Three shards.
	type shard struct {
		addr string
		dir  string
		p    *proc
	}
	shards := make([]*shard, 3)
	startShard := func(i int) error {
		sh := shards[i]
		_, port, _ := strings.Cut(sh.addr, ":")
		p, err := start(dir, fmt.Sprintf("shard-%d", i), "", nil, serverBinary(), "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", sh.dir)
		if err != nil {
			return err
		}
		sh.p = p
		return p.waitTCP(ctx, sh.addr, 10*time.Second)
	}
	for i := range shards {
		a, err := freeAddr()
		if err != nil {
			return err
		}
		shards[i] = &shard{addr: a, dir: filepath.Join(dir, fmt.Sprintf("shard-%d", i))}
		if err := os.MkdirAll(shards[i].dir, 0o755); err != nil {
			return err
		}
		if err := startShard(i); err != nil {
			return err
		}
	}
	defer func() {
		for _, sh := range shards {
			sh.p.stop()
		}
	}()

	// The gateway, from a config file it watches.
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	token := randomHex()
	cfgPath := filepath.Join(dir, "edgecache.yaml")
	config := func(gen int) string {
		ttl, weight := "1h", 1
		if gen%2 == 1 {
			ttl, weight = "50m", 2
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# soak generation %d\nserver:\n  listen: %s\nadmin:\n  listen: %s\nlog:\n  level: warn\n  format: json\n", gen, listen, admin)
		fmt.Fprintf(&b, "routes:\n  - name: products\n    origin: http://%s\n    default_ttl: %s\n", oln.Addr(), ttl)
		fmt.Fprintf(&b, "shards:\n  - { name: a, addr: %q }\n  - { name: b, addr: %q }\n  - { name: c, addr: %q, weight: %d }\n",
			shards[0].addr, shards[1].addr, shards[2].addr, weight)
		b.WriteString("valkey:\n  command_timeout: 500ms\n  breaker_cooldown: 2s\n")
		return b.String()
	}
	writeConfig := func(gen int) error { // a new file renamed over the old, as editors do
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(config(gen)), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, cfgPath)
	}
	if err := writeConfig(0); err != nil {
		return err
	}
	gw, err := start(dir, "edgecache", "", []string{"EDGECACHE_ADMIN_TOKEN=" + token}, filepath.Join(o.bin, "edgecache"), "serve", "--config", cfgPath)
	if err != nil {
		return err
	}
	defer gw.stop()
	if err := gw.waitTCP(ctx, listen, 20*time.Second); err != nil {
		return err
	}
	metrics := func() map[string]float64 { return scrape("http://"+admin+"/metrics", token) }

	// The load.
	var (
		ok, failed atomic.Int64
		uniq       atomic.Int64
		mu         sync.Mutex
		lat        []time.Duration
		firstErrs  []string
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, DisableCompression: true}}
	interval := time.Duration(int64(time.Second) * int64(o.workers) / int64(o.rate))
	runID := time.Now().Unix() % 100000 * 1000000
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			n := w * 7919
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				n++
				id := n%o.keys + 1
				if float64(n%1000) < o.unique*1000 {
					id = int(runID + uniq.Add(1) + int64(o.keys))
				}
				start := time.Now()
				msg := ""
				resp, err := client.Get("http://" + listen + "/products/" + strconv.Itoa(id))
				if err != nil {
					msg = err.Error()
				} else {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr != nil || resp.StatusCode != 200 || !strings.Contains(string(b), `"id":`+strconv.Itoa(id)+`,`) {
						msg = fmt.Sprintf("/products/%d: %d %v %.80q (%s)", id, resp.StatusCode, rerr, b, resp.Header.Get("Cache-Status"))
					}
				}
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				if msg != "" && len(firstErrs) < 5 {
					firstErrs = append(firstErrs, time.Now().Format("15:04:05 ")+msg)
				}
				mu.Unlock()
				if msg != "" {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	fmt.Printf("soak: %v at %d req/s (%d clients, %d keys, %.0f%% new keys), every %v a config reload and a shard restart\n",
		o.duration, o.rate, o.workers, o.keys, o.unique*100, o.every)
	fmt.Printf("%-8s %9s %7s %9s %9s %9s %9s %9s %6s %5s  %s\n", "t", "requests", "failed", "p50", "p99", "max", "RSS", "heap", "gorout", "gen", "event")
	var (
		t0                        = time.Now()
		baseRSS, baseHeap, baseGR float64
		lastRSS, lastHeap, lastGR float64
		prevOK, prevFailed        int64
		events                    int
		gen                       int
	)
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	end := time.NewTimer(o.duration)
	defer end.Stop()
	report := func(event string) {
		mu.Lock()
		ds := lat
		lat = nil
		mu.Unlock()
		slices.Sort(ds)
		var p50, p99, mx time.Duration
		if len(ds) > 0 {
			p50, p99, mx = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
		}
		r, _ := rss(gw.pid())
		m := metrics()
		heap, gr, g := m["go_memstats_heap_inuse_bytes"], m["go_goroutines"], m["edgecache_generation"]
		lastRSS, lastHeap, lastGR = float64(r), heap, gr
		if baseRSS == 0 {
			baseRSS, baseHeap, baseGR = lastRSS, lastHeap, lastGR
		}
		nOK, nFailed := ok.Load(), failed.Load()
		fmt.Printf("%-8s %9d %7d %9s %9s %9s %8.1fM %8.1fM %6.0f %5.0f  %s\n",
			time.Since(t0).Round(time.Second), nOK+nFailed-prevOK-prevFailed, nFailed-prevFailed,
			fmtDur(p50), fmtDur(p99), fmtDur(mx), float64(r)/(1<<20), heap/(1<<20), gr, g, event)
		prevOK, prevFailed = nOK, nFailed
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-end.C:
			done = true
		case <-tick.C:
			// Report the minute, then disturb: reload, and restart a shard.
			report("")
			events++
			gen++
			event := ""
			if err := writeConfig(gen); err != nil {
				event = "config write failed: " + err.Error()
			} else {
				event = fmt.Sprintf("config rewritten (gen %d); ", gen)
			}
			i := events % len(shards)
			shards[i].p.kill()
			time.Sleep(2 * time.Second)
			if err := startShard(i); err != nil {
				event += "shard restart failed: " + err.Error()
			} else {
				event += fmt.Sprintf("shard %d killed, restarted after 2s", i)
			}
			fmt.Printf("%-8s %s\n", time.Since(t0).Round(time.Second), event)
		}
	}
	close(stop)
	wg.Wait()
	report("end")
	nOK, nFailed := ok.Load(), failed.Load()
	fmt.Printf("\nsoak summary: %v, %d requests, %d failed (budget 0), %d reloads and %d shard restarts; origin served %d requests\n",
		time.Since(t0).Round(time.Second), nOK+nFailed, nFailed, events, events, orig.s.Requests())
	fmt.Printf("memory from the first report to the end: RSS %.1f → %.1f MiB (%+.1f), Go heap in use %.1f → %.1f MiB (%+.1f), goroutines %.0f → %.0f\n",
		baseRSS/(1<<20), lastRSS/(1<<20), (lastRSS-baseRSS)/(1<<20), baseHeap/(1<<20), lastHeap/(1<<20), (lastHeap-baseHeap)/(1<<20), baseGR, lastGR)
	for _, e := range firstErrs {
		fmt.Println("  error:", e)
	}
	if nFailed > 0 {
		return fmt.Errorf("%d failed requests", nFailed)
	}
	return ctx.Err()
}

// scrape reads a Prometheus text exposition into name → value (label
// sets summed).
func scrape(url, token string) map[string]float64 {
	out := map[string]float64{}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/plain")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			if j := strings.LastIndexByte(l, '}'); j > i {
				name, rest = l[:i], strings.TrimSpace(l[j+1:])
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}
