package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

const pluginUsage = `Usage:
  edgecache plugin run --plugin P.wasm [--config JSON|@FILE] --request 'GET https://host/path?q'
                       [--header 'Name: value']... [--response-status 200 [--response-header 'Name: value']...]
                       [--default-ttl 5m]
      load a plugin as the gateway would and print what each hook decides for
      one request (and, with --response-status, one origin response); exits 1
      if the plugin fails to load or any hook faults
  edgecache plugin compile --cache-dir DIR P.wasm...
      compile plugins into the compilation cache (serve with the same
      plugins.cache_dir starts without compiling); checks each against the ABI
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

func pluginRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pluginUsage) }
	path := fs.String("plugin", "", "the plugin module (.wasm)")
	config := fs.String("config", "", "the plugin's config: JSON, or @FILE")
	request := fs.String("request", "", "the request: 'METHOD URL' or 'URL' (GET)")
	status := fs.Int("response-status", 0, "run the response hook on an origin response with this status")
	defaultTTL := fs.Duration("default-ttl", 0, "the route's default TTL, for the built-in TTL policy")
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
	cfg := []byte(*config)
	if file, ok := strings.CutPrefix(*config, "@"); ok {
		if cfg, err = os.ReadFile(file); err != nil {
			fmt.Fprintf(stderr, "--config: %v\n", err)
			return 2
		}
	}
	bin, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := wasm.NewHost(ctx, wasm.Options{Logger: log, GuestOutput: stderr})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer h.Close(ctx)
	p, err := h.Load(ctx, bin, wasm.PluginOptions{Name: *path, Config: cfg, PoolSize: 1, Timeout: *timeout, MemoEntries: -1})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	defer p.Close(ctx)

	info := p.Info()
	fmt.Fprintf(stdout, "plugin    %s: ABI v%d, hooks: %s\n", *path, info.ABIVersion, info.HookNames())
	fmt.Fprintf(stdout, "request   %s %s://%s%s%s\n", preq.Method, preq.Scheme, preq.Host, preq.Path, prefixed("?", preq.RawQuery))
	wr := wasm.Request{Method: preq.Method, Scheme: preq.Scheme, Host: preq.Host, Path: preq.Path, RawQuery: preq.RawQuery, Header: preq.Header}
	faulted := false
	report := func(hook string, err error) string {
		if errors.Is(err, wasm.ErrNoHook) {
			return "(built-in: not exported)"
		}
		if err != nil {
			faulted = true
			return "(built-in: the plugin failed: " + err.Error() + ")"
		}
		return "(plugin)"
	}

	// key
	builtinKey := string(policies.DefaultKey{}.AppendKey(nil, preq))
	out, act, err := p.AppendKey(nil, &wr)
	key, how := builtinKey, report("key", err)
	if err == nil {
		switch act {
		case wasm.KeyReplace:
			key = string(out)
		case wasm.KeyExtend:
			key = builtinKey + string(out)
		default:
			how = "(built-in: the plugin declined or set nothing)"
		}
		if act != wasm.KeyDefault {
			how = "(plugin: " + act.String() + ")"
		}
	}
	fmt.Fprintf(stdout, "key       %s %s\n", key, how)

	// miss
	var a wasm.MissAction
	err = p.Miss(&wr, &a)
	fmt.Fprintf(stdout, "miss      %s %s\n", describeMiss(a), report("miss", err))

	// response
	if *status != 0 {
		resp := &policies.Response{Status: *status, Header: respHdr}
		base := policies.DefaultTTL{Default: *defaultTTL}.Decide(preq, resp, time.Now())
		d := wasm.Decision{Store: base.Store, TTL: base.TTL, StaleWhileRevalidate: base.StaleWhileRevalidate,
			StaleIfError: base.StaleIfError, Tags: base.Tags, Reason: base.Reason}
		err = p.Response(&wr, &wasm.Response{Status: *status, Header: respHdr}, &d)
		fmt.Fprintf(stdout, "response  %d: %s %s\n", *status, describeDecision(d), report("response", err))
	}

	s := p.Stats()
	fmt.Fprintf(stdout, "stats     calls key=%d miss=%d response=%d init=%d; faults %d; memory %d KiB per instance\n",
		s.Hooks[wasm.HookKey].Calls, s.Hooks[wasm.HookMiss].Calls, s.Hooks[wasm.HookResponse].Calls, s.Hooks[wasm.HookInit].Calls,
		s.Timeouts+s.Traps+s.OutOfMemory+s.ABIViolations, s.MemoryBytes/1024/max(1, int64(s.Instances)))
	if faulted {
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

// parseRequest reads 'METHOD URL' or 'URL' into the view policies get:
// host lower-cased without a default port, path escaped, as the gateway
// fills it.
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
	host := strings.ToLower(u.Host)
	if (u.Scheme == "http" && strings.HasSuffix(host, ":80")) || (u.Scheme == "https" && strings.HasSuffix(host, ":443")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return &policies.Request{Method: strings.ToUpper(method), Scheme: u.Scheme, Host: host,
		Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: hdr}, nil
}

func describeMiss(a wasm.MissAction) string {
	var b strings.Builder
	switch {
	case a.Status != 0:
		fmt.Fprintf(&b, "respond %d with %d bytes", a.Status, len(a.Body))
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

func describeDecision(d wasm.Decision) string {
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
	dir := fs.String("cache-dir", "", "the compilation cache directory (plugins.cache_dir)")
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
