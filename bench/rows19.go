package main

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The rows of issue 19: large bodies (100 KiB and 1 MiB, req/s and MB/s)
// and the miss path's server CPU per miss, each against nginx and Varnish
// in the same run.
//
// nginx serves a cached body from its cache file with sendfile (sendfile
// on in the template): the kernel copies page-cache pages to the socket
// and nginx never reads the body. edgecache serves it from the L1, the
// valkey-go reply in the Go heap, with one write per response (headers
// and body together): one copy from user memory into the socket, no file
// and no page cache. Varnish writes from its malloc storage, as edgecache
// does.

// bigBodies are the large-body workloads: origin, Host, keys.
var bigBodies = []struct {
	workload, host string
	bytes, keys    int
}{
	{"100 KiB body, 20 keys", "big100k.bench", 100 << 10, 20},
	{"1 MiB body, 20 keys", "big1m.bench", 1 << 20, 20},
}

// wlMissCPU is the miss path measured for CPU per miss: the server (and,
// for edgecache, its shards, where it stores) without the origin. The
// edgecache row's gateway is alone on its shards, as nginx is alone with
// its cache; wlMissCPUPeers is the same gateway config on the shards the
// other instances use too, where every miss takes the fill lock.
const (
	wlMissCPU      = "miss, 20 ms origin (CPU)"
	wlMissCPUPeers = "miss (CPU), with peers"
)

// benchSystem is a system under test of a variant's table.
type benchSystem struct {
	name string
	addr string
	pids []int
}

// bigRoutes adds the large-body routes to an edgecache config (none in
// the stacks without those origins).
func (s *stack) bigRoutes(b *strings.Builder) {
	for i, addr := range []string{s.big100kAddr, s.big1mAddr} {
		if addr != "" {
			fmt.Fprintf(b, "  - name: big%d\n    host: %s\n    origin: http://%s\n    default_ttl: 1h\n", i, bigBodies[i].host, addr)
		}
	}
}

// bigTemplateData are the nginx and Varnish template fields of the
// large-body origins and the slow origin.
func (s *stack) bigTemplateData() map[string]any {
	port := func(addr string) string {
		_, p, _ := strings.Cut(addr, ":")
		return p
	}
	if s.big100kAddr == "" {
		return nil
	}
	return map[string]any{
		"SlowPort": port(s.slowAddr), "Big100kPort": port(s.big100kAddr), "Big1mPort": port(s.big1mAddr),
		"Hosts": []struct{ Host, Upstream string }{
			{"miss.bench", "slow"}, {bigBodies[0].host, "big100k"}, {bigBodies[1].host, "big1m"},
		},
	}
}

// rows19 measures the large-body rows and the miss CPU rows, the three
// systems interleaved as the other rows are.
func (s *stack) rows19(o benchOpts, scripts string, systems []benchSystem,
	measure func(workload, system, addr string, pids []int, w wrkRun) error) error {
	for _, bb := range bigBodies {
		w := wrkRun{URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: []string{"BENCH_KEYS=" + strconv.Itoa(bb.keys)},
			Header: []string{"Host: " + bb.host}}
		for _, sys := range systems {
			if err := measure(bb.workload, sys.name, sys.addr, sys.pids, w); err != nil {
				return err
			}
		}
	}
	return s.missRows(scripts, systems, 0, measure)
}

// missRows measures the miss CPU rows once, the systems interleaved;
// round numbers the key ranges, so that no round sees another's keys.
func (s *stack) missRows(scripts string, systems []benchSystem, round int,
	measure func(workload, system, addr string, pids []int, w wrkRun) error) error {
	type missRow struct {
		workload string
		sys      benchSystem
	}
	var rows []missRow
	for _, sys := range systems {
		if sys.name == "edgecache" && s.edge["edgecache-alone"] != "" {
			rows = append(rows,
				missRow{wlMissCPU, benchSystem{sys.name, s.edge["edgecache-alone"], append([]int{s.edgePid["edgecache-alone"]}, s.aloneShardPids...)}},
				missRow{wlMissCPUPeers, benchSystem{sys.name, sys.addr, append(append([]int(nil), sys.pids...), s.shardPids...)}})
			continue
		}
		rows = append(rows, missRow{wlMissCPU, sys})
	}
	for i, r := range rows {
		// A fresh key range per row: no system has seen these keys.
		base := (time.Now().Unix()%10000*100 + int64(round*10+i+1)) * 1000000
		w := wrkRun{URL: "/", Script: filepath.Join(scripts, "miss.lua"), Env: []string{"BENCH_MISS_BASE=" + strconv.FormatInt(base, 10)},
			Header: []string{"Host: miss.bench"}}
		if err := measure(r.workload, r.sys.name, r.sys.addr, r.sys.pids, w); err != nil {
			return err
		}
	}
	return nil
}

// bigNote is the MB/s of a large-body row (bodies only, about: the origin
// pads to about the size).
func bigNote(r row) string {
	for _, bb := range bigBodies {
		if r.workload == bb.workload {
			return fmt.Sprintf("%.0f MB/s", r.res.RPS*float64(bb.bytes)/1e6)
		}
	}
	switch r.workload {
	case wlMissCPU:
		note := "CPU/req is the server's alone (edgecache: with its shards), not the origin's"
		if r.system == "edgecache" {
			note += fmt.Sprintf("; a gateway alone on its 3 shards (no fill lock: 2 round trips per miss): gateway %s + shards %s; this run's miss latency includes the 20 ms origin",
				fmtDur(r.lead), fmtDur(r.cpu-r.lead))
		}
		return note
	case wlMissCPUPeers:
		return fmt.Sprintf("the gateway of the other rows, on shards 4 other gateways use: every miss takes the fill lock (3 round trips); CPU/req with its shards: gateway %s + shards %s",
			fmtDur(r.lead), fmtDur(r.cpu-r.lead))
	}
	return ""
}

// goals19 checks issue 19's goals on a variant: large bodies at least
// nginx's MB/s, and CPU per miss no more than nginx's.
func goals19(name string, vr *variantResult, check func(goal string, ok bool, measured string)) {
	for _, bb := range bigBodies {
		e, n := vr.find(bb.workload, "edgecache"), vr.find(bb.workload, "nginx")
		if e == nil || n == nil || n.res.RPS == 0 {
			continue
		}
		mbs := func(r *row) float64 { return r.res.RPS * float64(bb.bytes) / 1e6 }
		check(fmt.Sprintf("%s: %s >= 1.0x nginx MB/s", name, bb.workload), mbs(e) >= mbs(n),
			fmt.Sprintf("%.0f vs %.0f MB/s (%.2fx)", mbs(e), mbs(n), mbs(e)/mbs(n)))
	}
	e, n := vr.find(wlMissCPU, "edgecache"), vr.find(wlMissCPU, "nginx")
	if e != nil && n != nil && n.cpu > 0 {
		check(name+": server CPU per miss <= nginx's", e.cpu <= n.cpu,
			fmt.Sprintf("%s vs %s (%.2fx), with its shards; the gateway's own %s (%.2fx)", fmtDur(e.cpu), fmtDur(n.cpu), float64(e.cpu)/float64(n.cpu),
				fmtDur(e.lead), float64(e.lead)/float64(n.cpu)))
	}
}

// medianCPU keeps, of the rounds of each workload and system, the round
// of median CPU per request, the figure the miss goal reads.
func medianCPU(rows []row) []row {
	type key struct{ workload, system string }
	var order []key
	rounds := map[key][]row{}
	for _, r := range rows {
		k := key{r.workload, r.system}
		if rounds[k] == nil {
			order = append(order, k)
		}
		rounds[k] = append(rounds[k], r)
	}
	out := make([]row, 0, len(order))
	for _, k := range order {
		rs := rounds[k]
		slices.SortFunc(rs, func(a, b row) int { return cmp.Compare(a.cpu, b.cpu) })
		med := rs[len(rs)/2]
		if len(rs) > 1 {
			med.note = strings.TrimSpace(fmt.Sprintf("%s median CPU/req of %d rounds (%s–%s)", med.note, len(rs), fmtDur(rs[0].cpu), fmtDur(rs[len(rs)-1].cpu)))
		}
		out = append(out, med)
	}
	return out
}
