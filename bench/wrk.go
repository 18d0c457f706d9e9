package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests int64
	Duration time.Duration
	RPS      float64
	P50, P99 time.Duration
	Non2xx   int64
	SockErrs int64         // connect, read, write and timeout errors
	CPU      time.Duration // wrk's own user+system time
}

// wrkRun describes one wrk invocation.
type wrkRun struct {
	URL         string
	Threads     int
	Conns       int
	Duration    time.Duration
	Script      string   // Lua script, "" for none
	Header      []string // "Name: value"
	CPUs        string   // taskset for wrk ("" none)
	Env         []string // for the Lua script
	TimeoutSecs int
	Scheme      string // "http" (default) or "https"
	H2          bool   // h2load (HTTP/2, -m Streams per connection) instead of wrk
	Streams     int
}

func (w wrkRun) argv() []string {
	args := []string{"wrk", "-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns),
		"-d", fmt.Sprintf("%ds", int(w.Duration.Seconds())), "--latency", "--timeout", "5s"}
	if w.Script != "" {
		args = append(args, "-s", w.Script)
	}
	for _, h := range w.Header {
		args = append(args, "-H", h)
	}
	return cpuPrefix(w.CPUs, append(args, w.URL))
}

// run runs wrk, bounded by its duration plus a margin.
func (w wrkRun) run(ctx context.Context) (wrkResult, string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	argv := w.argv()
	if w.H2 {
		argv = w.h2loadArgv() // tls.go
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Environ(), w.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	parse := parseWrk
	if w.H2 {
		parse = parseH2load
	}
	r, err := parse(string(out))
	if ps := cmd.ProcessState; ps != nil {
		r.CPU = ps.UserTime() + ps.SystemTime()
	}
	return r, string(out), err
}

var (
	reLatency  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	reRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	reNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErrs = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	case "m":
		return time.Duration(f * float64(time.Minute))
	}
	return time.Duration(f * float64(time.Second))
}

// parseWrk reads wrk 4's --latency output.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	for _, m := range reLatency.FindAllStringSubmatch(out, -1) {
		d := parseDur(m[2], m[3])
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	m := reRequests.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no request count in:\n%s", out)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Duration = parseDur(m[2], m[3])
	if m := reRPS.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSockErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SockErrs += n
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk: no latency distribution in:\n%s", out)
	}
	return r, nil
}
