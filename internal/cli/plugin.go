package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

const pluginUsage = `Usage:
  edgecache plugin run --plugin P.wasm [--config JSON|@FILE] --request 'GET https://host/path?q'
                       [--header 'Name: value']... [--response-status 200 [--response-header 'Name: value']...]
                       [--default-ttl 5m] [--negative-ttl 10s] [--heuristic-freshness]
      load a plugin as the gateway would and print what each hook decides for
      one request (and, with --response-status, one origin response), through
      the same policies the gateway builds for a route that uses the plugin;
      exits 1 if the plugin fails to load or any hook faults
  edgecache plugin test FILE...
      run each table of requests (and origin responses) in FILE against its
      plugin, through the gateway's policies, and compare the keys and
      decisions with the expected ones; exits 1 with a diff on a mismatch
      (the format: plugins/README.md, "Testing a plugin")
  edgecache plugin compile --cache-dir DIR P.wasm...
      compile plugins into the compilation cache (serve with the same
      wasm.cache_dir starts without compiling); checks each against the ABI
`

// PluginCmd runs `edgecache plugin …` and returns the exit code.
func PluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return 2
	}
	switch args[0] {
	case "run":
		return pluginRun(ctx, args[1:], stdout, stderr)
	case "test":
		return pluginTest(ctx, args[1:], stdout, stderr)
	case "compile":
		return pluginCompile(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, pluginUsage)
		return 0
	}
	fmt.Fprint(stderr, pluginUsage)
	return 2
}

// headerFlags collects repeated "Name: value" flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	http.Header(h).Add(name, strings.TrimSpace(value))
	return nil
}

// loaded is a plugin loaded as the gateway loads it, and the policies of a
// route that uses it.
type loaded struct {
	host   *wasm.Host
	plugin hook.Plugin
	info   wasm.ModuleInfo
	set    policies.Set
}

func (l *loaded) close(ctx context.Context) {
	_ = l.plugin.Close(ctx)
	_ = l.host.Close(ctx)
}

// loadRoute loads the plugin at path through policies.LoadPlugin and
// builds the policies of route rc with it, as the gateway does
// (gateway.RoutePolicies, then policies.FromPlugin).
func loadRoute(ctx context.Context, path string, conf []byte, timeout time.Duration, rc config.Route, stderr io.Writer) (*loaded, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := wasm.NewHost(ctx, wasm.Options{Logger: log, GuestOutput: stderr})
	if err != nil {
		return nil, err
	}
	p, err := policies.LoadPlugin(ctx, h, bin, hook.PluginOptions{Name: path, Config: conf, PoolSize: 1, Timeout: timeout, MemoEntries: -1})
	if err != nil {
		_ = h.Close(ctx)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info, _ := h.Compile(ctx, bin) // compiled by the load: a cache hit
	return &loaded{host: h, plugin: p, info: info, set: policies.FromPlugin(p, gateway.RoutePolicies(rc))}, nil
}

// outcome is what one request got from a route's policies.
type outcome struct {
	key       string
	keyTrace  policies.Trace
	miss      policies.MissAction
	missTrace policies.Trace
	dec       policies.Decision
	decTrace  policies.Trace
}

// decide runs the route's policies on r (and resp, when not nil).
func (l *loaded) decide(r *policies.Request, resp *policies.Response, now time.Time) outcome {
	var o outcome
	key, kt := policies.TraceKey(l.set.Key, nil, r)
	o.key, o.keyTrace = string(key), kt
	o.miss, o.missTrace = policies.TraceMiss(l.set.Miss, r)
	if resp != nil {
		o.dec, o.decTrace = policies.TraceTTL(l.set.TTL, r, resp, now)
	}
	return o
}

// describeTrace says how the plugin took part, for `plugin run`.
func (l *loaded) describeTrace(h hook.ID, t policies.Trace) string {
	if !l.plugin.Has(h) {
		return "(built-in: not exported)"
	}
	switch t.Outcome {
	case policies.OutcomePlugin:
		if h == hook.KeyHook {
			return "(plugin: " + t.Action.String() + ")"
		}
		return "(plugin)"
	case policies.OutcomeFailed:
		return "(failed → built-in: " + t.Err.Error() + ")"
	}
	return "(" + t.Outcome.String() + ")"
}

func pluginRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pluginUsage) }
	path := fs.String("plugin", "", "the plugin module (.wasm)")
	conf := fs.String("config", "", "the plugin's config: JSON, or @FILE")
	request := fs.String("request", "", "the request: 'METHOD URL' or 'URL' (GET)")
	status := fs.Int("response-status", 0, "run the response hook on an origin response with this status")
	var rc config.Route
	fs.DurationVar(&rc.DefaultTTL, "default-ttl", 0, "the route's default_ttl, for the built-in TTL policy")
	fs.DurationVar(&rc.NegativeTTL, "negative-ttl", config.DefaultNegativeTTL, "the route's negative_ttl")
	fs.BoolVar(&rc.HeuristicFreshness, "heuristic-freshness", false, "the route's heuristic_freshness")
	timeout := fs.Duration("timeout", wasm.DefaultTimeout, "deadline of each hook call")
	reqHdr, respHdr := http.Header{}, http.Header{}
	fs.Var(headerFlags(reqHdr), "header", "a request header 'Name: value' (repeatable)")
	fs.Var(headerFlags(respHdr), "response-header", "an origin response header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *request == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, pluginUsage)
		return 2
	}
	preq, err := parseRequest(*request, reqHdr)
	if err != nil {
		fmt.Fprintf(stderr, "--request: %v\n", err)
		return 2
	}
	cfg := []byte(*conf)
	if file, ok := strings.CutPrefix(*conf, "@"); ok {
		if cfg, err = os.ReadFile(file); err != nil {
			fmt.Fprintf(stderr, "--config: %v\n", err)
			return 2
		}
	}
	l, err := loadRoute(ctx, *path, cfg, *timeout, rc, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer l.close(ctx)

	fmt.Fprintf(stdout, "plugin    %s: ABI v%d, hooks: %s\n", *path, l.info.ABIVersion, l.info.HookNames())
	fmt.Fprintf(stdout, "request   %s %s://%s%s%s\n", preq.Method, preq.Scheme, preq.Host, preq.Path, prefixed("?", preq.RawQuery))
	var resp *policies.Response
	if *status != 0 {
		resp = &policies.Response{Status: *status, Header: respHdr}
	}
	o := l.decide(preq, resp, time.Now())
	fmt.Fprintf(stdout, "key       %s %s\n", o.key, l.describeTrace(hook.KeyHook, o.keyTrace))
	fmt.Fprintf(stdout, "miss      %s %s\n", describeMiss(o.miss), l.describeTrace(hook.MissHook, o.missTrace))
	if resp != nil {
		fmt.Fprintf(stdout, "response  %d: %s %s\n", *status, describeDecision(o.dec), l.describeTrace(hook.ResponseHook, o.decTrace))
	}

	s := l.plugin.Stats()
	fmt.Fprintf(stdout, "stats     calls key=%d miss=%d response=%d init=%d; declined %d; faults %d; memory %d KiB per instance\n",
		s.Hooks[hook.KeyHook].Calls, s.Hooks[hook.MissHook].Calls, s.Hooks[hook.ResponseHook].Calls, s.Hooks[hook.InitHook].Calls,
		s.Hooks[hook.KeyHook].Declined+s.Hooks[hook.MissHook].Declined+s.Hooks[hook.ResponseHook].Declined,
		s.Timeouts+s.Traps+s.OutOfMemory+s.ABIViolations, s.MemoryBytes/1024/max(1, int64(s.Instances)))
	if o.keyTrace.Outcome == policies.OutcomeFailed || o.missTrace.Outcome == policies.OutcomeFailed || o.decTrace.Outcome == policies.OutcomeFailed {
		return 1
	}
	return 0
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// parseRequest reads 'METHOD URL' or 'URL' into the view policies get,
// with the fields the gateway's read path fills from a request: the host
// through policies.CanonicalHost, the escaped path, the raw query.
func parseRequest(s string, hdr http.Header) (*policies.Request, error) {
	method, rawURL, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		method, rawURL = http.MethodGet, method
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", rawURL)
	}
	if hdr == nil {
		hdr = http.Header{}
	}
	return &policies.Request{Method: strings.ToUpper(method), Scheme: u.Scheme, Host: policies.CanonicalHost(u.Host),
		Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: hdr}, nil
}

func describeMiss(a policies.MissAction) string {
	var b strings.Builder
	switch {
	case a.Status != 0:
		fmt.Fprintf(&b, "respond %d with %d bytes (not cached)", a.Status, len(a.Body))
	case a.OriginURL != "":
		fmt.Fprintf(&b, "fetch %s", a.OriginURL)
	default:
		b.WriteString("fetch from the route's origin")
	}
	if a.Bypass {
		b.WriteString(", bypass the cache")
	}
	for name, v := range a.Header {
		fmt.Fprintf(&b, ", %s: %s", name, strings.Join(v, ", "))
	}
	return b.String()
}

func describeDecision(d policies.Decision) string {
	if !d.Store {
		return "do not store (" + d.Reason + ")"
	}
	s := fmt.Sprintf("store, ttl %v", d.TTL)
	if d.StaleWhileRevalidate > 0 {
		s += fmt.Sprintf(", stale-while-revalidate %v", d.StaleWhileRevalidate)
	}
	if d.StaleIfError > 0 {
		s += fmt.Sprintf(", stale-if-error %v", d.StaleIfError)
	}
	if len(d.Tags) > 0 {
		s += ", tags " + strings.Join(d.Tags, " ")
	}
	return s
}

func pluginCompile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin compile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pluginUsage) }
	dir := fs.String("cache-dir", "", "the compilation cache directory (wasm.cache_dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return 2
	}
	h, err := wasm.NewHost(ctx, wasm.Options{CacheDir: *dir})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer h.Close(ctx)
	code := 0
	for _, path := range fs.Args() {
		bin, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = 1
			continue
		}
		start := time.Now()
		info, err := h.Compile(ctx, bin)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ABI v%d, hooks: %s; compiled in %v\n", path, info.ABIVersion, info.HookNames(), time.Since(start).Round(time.Millisecond))
	}
	return code
}
