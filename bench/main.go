// Command edgebench measures edgecache against nginx and Varnish on this
// machine, and soaks it. It is what `make bench` and `make soak` run
// (bench/run.sh, scripts/soak.sh); every server it starts listens on
// loopback, and every load it makes is bounded in time.
//
// # Subcommands
//
//	edgebench run     the side-by-side benchmark: one table per variant (shared cores, pinned cores)
//	edgebench soak    steady load with config reloads and shard restarts every minute
//	edgebench origin  the benchmark origin: examples/origin's product API plus a request counter
//	edgebench gateway an in-process gateway with a CPU profile, for pprof under wrk
//
// # The origin
//
// The origin is examples/origin.Server, the handler of bin/demo-origin,
// served with one more endpoint, GET /_bench/requests, that returns how
// many requests (and distinct paths) it served: the miss workload checks
// that edgecache sends one origin request per key.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `edgebench — edgecache's benchmark and soak driver

  edgebench run [flags]       benchmark edgecache, nginx and Varnish side by side (make bench)
  edgebench soak [flags]      soak edgecache under steady load (make soak)
  edgebench origin [flags]    serve the benchmark origin
  edgebench gateway [flags]   serve a gateway in-process and write a CPU profile

Run a subcommand with -h for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = runBench(ctx, os.Args[2:])
	case "soak":
		err = runSoak(ctx, os.Args[2:])
	case "origin":
		err = runOrigin(ctx, os.Args[2:])
	case "gateway":
		err = runGateway(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "edgebench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
