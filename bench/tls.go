package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The TLS rows: the same ECDSA P-256 certificate (examples/configs/tls)
// and TLS 1.3 on both sides, edgecache's TLS listener against nginx's
// ssl+http2 server on the same proxy_cache.
const (
	wlHTTPS   = "HTTPS h1 L1 hit, TLS 1.3"
	wlH2      = "HTTP/2 L1 hit (h2load -c 64 -m 10)"
	wlNewConn = "new TLS connection per request"

	benchCert = "examples/configs/tls/example.crt"
	benchKey  = "examples/configs/tls/example.key"
	// h2URLs is how many distinct keys h2load cycles through (it takes
	// them on its command line).
	h2URLs = 100
)

// tlsStack is the TLS side of a stack.
type tlsStack struct {
	nginxAddr string // nginx's ssl port, same process as the plain one
}

// prepareTLS starts the TLS edgecache and returns the nginx template's
// TLS fields.
func (s *stack) prepareTLS(ctx context.Context, v variant) (map[string]any, error) {
	cert, err := filepath.Abs(benchCert)
	if err != nil {
		return nil, err
	}
	key, err := filepath.Abs(benchKey)
	if err != nil {
		return nil, err
	}
	x := extras{server: fmt.Sprintf("  tls:\n    min_version: \"1.3\"\n    certificates:\n      - { cert_file: %q, key_file: %q }\n", cert, key)}
	if err := s.startEdge(ctx, "edgecache-tls", v.serverCPUs, false, x); err != nil {
		return nil, err
	}
	if s.tls.nginxAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(s.tls.nginxAddr, ":")
	return map[string]any{"TLSPort": port, "Cert": cert, "Key": key}, nil
}

func mergeData(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

type tlsRow struct {
	workload, system, addr string
	pids                   []int
	w                      wrkRun
}

// tlsRows are the TLS workloads, edgecache and nginx interleaved.
func tlsRows(s *stack, keysEnv []string, scripts string) []tlsRow {
	var rows []tlsRow
	for _, wl := range []struct {
		name string
		w    wrkRun
	}{
		{wlHTTPS, wrkRun{Scheme: "https", URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: keysEnv}},
		{wlH2, wrkRun{Scheme: "https", URL: "/", H2: true, Conns: 64, Streams: 10}},
		{wlNewConn, wrkRun{Scheme: "https", URL: "/products/1", Header: []string{"Connection: close"}}},
	} {
		rows = append(rows,
			tlsRow{wl.name, "edgecache", s.edge["edgecache-tls"], []int{s.edgePid["edgecache-tls"]}, wl.w},
			tlsRow{wl.name, "nginx", s.tls.nginxAddr, []int{s.nginxPid}, wl.w})
	}
	return rows
}

// h2loadArgv is h2load for w: w.URL is the base (scheme://host:port/);
// the keys /products/1..h2URLs are its URIs, cycled.
func (w wrkRun) h2loadArgv() []string {
	args := []string{"h2load", "-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns), "-m", strconv.Itoa(max(w.Streams, 1)),
		"-D", strconv.Itoa(max(int(w.Duration.Seconds()), 1))}
	base := strings.TrimSuffix(w.URL, "/")
	for i := 1; i <= h2URLs; i++ {
		args = append(args, base+"/products/"+strconv.Itoa(i))
	}
	return cpuPrefix(w.CPUs, args)
}

var (
	reH2Finished = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(us|ms|s|m), ([0-9.]+) req/s`)
	reH2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reH2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	reH2Time     = regexp.MustCompile(`(?m)^time for request:\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)`)
)

// parseH2load reads h2load's summary. h2load prints no percentiles: P50
// holds the mean request time and P99 the maximum.
func parseH2load(out string) (wrkResult, error) {
	var r wrkResult
	m := reH2Finished.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no summary in:\n%s", out)
	}
	r.Duration = parseDur(m[1], m[2])
	r.RPS, _ = strconv.ParseFloat(m[3], 64)
	if m := reH2Requests.FindStringSubmatch(out); m != nil {
		ok, _ := strconv.ParseInt(m[2], 10, 64)
		r.Requests = ok
		for _, f := range m[3:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			r.SockErrs += n
		}
	}
	if m := reH2Status.FindStringSubmatch(out); m != nil {
		for _, f := range m[2:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			r.Non2xx += n
		}
	}
	if m := reH2Time.FindStringSubmatch(out); m != nil {
		r.P50 = parseDur(m[5], m[6]) // mean
		r.P99 = parseDur(m[3], m[4]) // max
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("h2load: no requests in:\n%s", out)
	}

	return r, nil
}

// tlsGoals checks issue 15's targets: HTTPS h1 hits >= 1.3x nginx,
// HTTP/2 hits >= 1.0x, new TLS connections >= 0.8x.
func tlsGoals(variant string, vr *variantResult, check func(goal string, ok bool, measured string)) {
	for _, g := range []struct {
		workload string
		min      float64
	}{{wlHTTPS, 1.3}, {wlH2, 1.0}, {wlNewConn, 0.8}} {
		e, n := vr.find(g.workload, "edgecache"), vr.find(g.workload, "nginx")
		if e == nil || n == nil || n.res.RPS == 0 {
			continue
		}
		r := e.res.RPS / n.res.RPS
		check(fmt.Sprintf("%s: %s >= %.1fx nginx", variant, g.workload, g.min), r >= g.min,
			fmt.Sprintf("%.2fx (client CPUs busy %.2f vs %.2f)", r, e.client, n.client))
	}
}
