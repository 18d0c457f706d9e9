// Package cli is the edgecache command line: serve, config check. It is
// internal so that cmd/edgecache stays a few lines and the commands can be
// tested in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/wasm"
)

const usage = `edgecache — an HTTP cache gateway

Usage:
  edgecache serve [--config FILE]     serve traffic (embedded default config without --config)
  edgecache config check FILE         validate a config file; exit 1 with every error
  edgecache plugin run --plugin P.wasm --request 'GET https://host/path?q' [...]
                                      what each hook of a plugin decides (see edgecache plugin run -h)
  edgecache plugin test FILE...       run a plugin's table of requests and expected keys/decisions
  edgecache plugin compile --cache-dir DIR P.wasm...
                                      precompile plugins into a compilation cache (container images)
  edgecache shardmap plan OLD NEW [--keys FILE | --sample N]
                                      what moving from OLD's shard map to NEW's costs (contacts no server)
`

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "config":
		if len(args) == 3 && args[1] == "check" {
			return configCheck(args[2], stdout, stderr)
		}
	case "plugin":
		return PluginCmd(ctx, args[1:], stdout, stderr)
	case "shardmap":
		if len(args) >= 2 && args[1] == "plan" {
			return planCmd(args[2:], stdout, stderr)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

func configCheck(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		err = compilePlugins(cfg.Plugins)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n", path)
		for _, e := range flattenErrors(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

// compilePlugins compiles every plugin of a config (validating its ABI
// version and exports) without running it.
func compilePlugins(plugins []config.Plugin) error {
	if len(plugins) == 0 {
		return nil
	}
	ctx := context.Background()
	h, err := wasm.NewHost(ctx, wasm.Options{})
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	var errs []error
	for i, p := range plugins {
		code, err := os.ReadFile(p.Path)
		if err == nil {
			_, err = h.Compile(ctx, code)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins[%d] (%s): %w", i, p.Name, err))
		}
	}
	return errors.Join(errs...)
}

// flattenErrors unwraps joined errors so that each is printed on its line.
func flattenErrors(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// setFlags collects repeated --set path=value flags.
type setFlags []string

func (s *setFlags) String() string     { return fmt.Sprint(*s) }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("EDGECACHE_CONFIG"), "config file (YAML); without one: EDGECACHE_ variables, else the embedded default")
	listen := fs.String("listen", "", "traffic listener address (overrides server.listen)")
	logFormat := fs.String("log-format", "", "json or text (default: text on a terminal, json otherwise)")
	var sets setFlags
	fs.Var(&sets, "set", "override a config value: --set valkey.command_timeout=250ms (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := newLogger(stderr, *logFormat)

	src := config.Source{File: *path, Environ: os.Environ(), Sets: sets}
	if *listen != "" {
		src.Sets = append(src.Sets, "server.listen="+*listen)
	}
	if src.File == "" && !hasRouteEnv(src.Environ) {
		src.Default = config.DefaultYAML
	}
	cfg, err := src.Load()
	if err != nil {
		log.Error("invalid configuration", "err", err)
		return 1
	}
	format := *logFormat
	if format == "" {
		format = cfg.Log.Format
	}
	log = telemetry.NewLogger(stderr, format, cfg.Log.Level)
	memLimit := newMemoryLimit()
	memLimit.apply(cfg, log)
	tracing, err := telemetry.NewTracing(ctx, exportOf(cfg.Telemetry), "")
	if err != nil {
		log.Error("cannot start tracing", "err", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn("flushing spans", "err", err)
		}
	}()
	token, generated, err := admin.Token(cfg.Admin, os.Getenv)
	if err != nil {
		log.Error("no admin token", "err", err)
		return 1
	}
	host, err := wasm.NewHost(context.Background(), wasm.Options{CacheDir: cfg.WASM.CacheDir, Logger: log})
	if err != nil {
		log.Error("cannot start the plugin host", "err", err)
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: log, Source: src, Tracing: tracing, Plugins: host})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer g.Close()
	api := admin.New(g, token) // the admin API and status page, over the gateway's View
	defer api.Close()
	edge, closeEdge, err := newEdge(cfg, g, log) // TLS, HTTP/2, HTTP/3, PROXY protocol (edge.go)
	if err != nil {
		log.Error("cannot start the traffic listener", "err", err)
		return 1
	}
	defer closeEdge()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return 1
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		log.Error("cannot listen (admin)", "err", err)
		return 1
	}
	if generated {
		// Printed once, never logged: it exists nowhere else.
		fmt.Fprintf(stdout, "edgecache: admin token (generated; set %s or admin.token_file to choose one): %s\n", admin.TokenEnv, token)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); !isLoopback(host) {
		log.Warn("the admin API listens beyond loopback; it is protected by its token only", "admin", aln.Addr().String())
	}
	store := "embedded store"
	if n := len(cfg.Shards); n > 0 {
		store = fmt.Sprintf("%d Valkey shards", n)
	}
	log.Info("edgecache serving", "listen", ln.Addr().String(), "admin", aln.Addr().String(), "config", src.String(), "store", store, "tracing", tracing.Enabled)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		if err := api.Serve(ctx, aln); err != nil {
			log.Error("admin listener", "err", err)
		}
	}()
	defer func() { stop(); <-adminDone }()
	reload := func(trigger string) {
		log.Info("reloading configuration", "trigger", trigger)
		// Errors are logged and kept for the admin status.
		if g.ReloadSource() == nil {
			memLimit.apply(g.Generation().Config, log)
			reloadEdge(edge, g, log)
			memLimit.settle()
			trim(log) // the reload's parsing and building touched pages again
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			}
		}
	}()
	// Traffic first: the listener is open already, and each file watch
	// below takes a millisecond or so to set up.
	served := make(chan error, 1)
	go func() { served <- edge.Serve(ctx, ln, g.Serve) }()
	go memLimit.settle() // the startup's garbage, once serving: off the first request's path
	go trimAfter(ctx, DefaultTrimDelay, log)
	go releaseWhenQuiet(ctx, memLimit.idleRelease, memLimit.settle, log)
	if src.File != "" {
		if err := config.Watch(ctx, src.File, config.DefaultDebounce, func() { reload("file") }); err != nil {
			log.Warn("cannot watch the config file; SIGHUP still reloads", "err", err)
		}
	}
	// A rebuilt plugin reloads too. The plugins watched are those of the
	// first configuration; one added later is picked up by any reload.
	for _, p := range cfg.Plugins {
		if err := config.Watch(ctx, p.Path, config.DefaultDebounce, func() { reload("plugin " + p.Name) }); err != nil {
			log.Warn("cannot watch a plugin file; SIGHUP still reloads", "plugin", p.Name, "err", err)
		}
	}
	if err := <-served; err != nil {
		log.Error("serve", "err", err)
		return 1
	}
	log.Info("edgecache stopped")
	return 0
}

// hasRouteEnv reports whether the environment configures routes, in
// which case it is the whole configuration (serverless platforms) rather
// than overrides of the embedded default.
func hasRouteEnv(environ []string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, config.EnvPrefix+"ROUTES_") {
			return true
		}
	}
	return false
}

// newLogger is the logger used until the configuration is read.
func newLogger(w io.Writer, format string) *slog.Logger { return telemetry.NewLogger(w, format, "") }

// isLoopback reports whether host (from admin.listen) binds to loopback
// only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// exportOf is the telemetry section as internal/telemetry takes it.
func exportOf(c config.Telemetry) telemetry.Export {
	return telemetry.Export{
		Endpoint: c.OTLPEndpoint, Protocol: c.OTLPProtocol, Headers: c.OTLPHeaders,
		SampleRatio: c.SampleRatio, ServiceName: c.ServiceName, ResourceAttributes: c.ResourceAttributes,
	}
}
