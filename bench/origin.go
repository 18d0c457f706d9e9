package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/examples/origin"
	"github.com/edgecache/edgecache/gateway"
)

// countingOrigin is the demo origin with a request counter.
type countingOrigin struct {
	s     *origin.Server
	mu    sync.Mutex
	paths map[string]struct{}
}

func newCountingOrigin(latency time.Duration, bodyBytes int) *countingOrigin {
	s := origin.New(latency)
	s.BodyBytes = bodyBytes
	return &countingOrigin{s: s, paths: map[string]struct{}{}}
}

// originCount is the answer of /_bench/requests.
type originCount struct {
	Requests int64 `json:"requests"`
	Distinct int   `json:"distinct"`
}

func (o *countingOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_bench/requests" {
		o.mu.Lock()
		c := originCount{Requests: o.s.Requests(), Distinct: len(o.paths)}
		o.mu.Unlock()
		_ = json.NewEncoder(w).Encode(c)
		return
	}
	o.mu.Lock()
	o.paths[r.URL.Path] = struct{}{}
	o.mu.Unlock()
	o.s.ServeHTTP(w, r)
}

func runOrigin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address (loopback)")
	latency := fs.Duration("latency", 0, "added to every response")
	body := fs.Int("body-bytes", 1024, "pad product bodies to about this size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newCountingOrigin(*latency, *body), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// fetchOriginCount reads the counter of the origin at addr.
func fetchOriginCount(addr string) (originCount, error) {
	var c originCount
	resp, err := http.Get("http://" + addr + "/_bench/requests")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c, err
}

// runGateway serves a gateway built from a config file, as `edgecache
// serve` does (without the admin API and tracing), and writes a CPU
// profile of its whole life: the pprof of the hit path under wrk.
func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file")
	profile := fs.String("cpuprofile", "", "write a CPU profile here")
	memOut := fs.String("memprofile", "", "write a profile of the allocations made while serving here (sampled every 4 KiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memOut != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(*memOut); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	fmt.Fprintln(os.Stderr, "edgebench gateway: serving on", ln.Addr())
	return g.Serve(ctx, ln)
}
