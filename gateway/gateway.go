package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/internal/observe"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/origins"
)

// Defaults of the gateway's in-process memos.
const (
	// DefaultInternedKeys bounds the key interner (entries).
	DefaultInternedKeys = 1 << 18
	// DefaultViewMemoBytes bounds the decoded-entry memo by the bytes of
	// the entries it keeps alive.
	DefaultViewMemoBytes = config.DefaultViewMemoBytes
)

// Options are the parts of a Gateway that do not come from the config
// file. Zero values mean the default.
type Options struct {
	// Logger receives the gateway's logs (default slog.Default()).
	Logger *slog.Logger
	// Transport carries origin requests (default: a tuned clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Source is where the configuration comes from; ReloadSource reads it
	// again.
	Source config.Source
	// Tracing exports spans (nil or not Enabled: no tracing, at no cost).
	Tracing *telemetry.Tracing
	// Plugins loads the configured WASM plugins (a *wasm.Host; the gateway
	// does not depend on the WASM runtime). The gateway owns it and closes
	// it on Close. nil: a configuration with plugins is rejected.
	Plugins hook.Loader
	// Now is the clock freshness is judged by: when entries are stored,
	// stale, soft-purged (default time.Now). Tests advance it to make
	// entries stale without sleeping. Valkey's TTLs, the L1's and the
	// shards' health keep real time.
	Now func() time.Time
}

// Gateway serves the traffic listener. Requests read the current
// generation through one atomic pointer.
type Gateway struct {
	gen       atomic.Pointer[Generation]
	nextID    atomic.Uint64
	sf        singleflight.Group
	keys      *keyInterner
	views     *viewMemo
	transport http.RoundTripper
	log       *slog.Logger
	echo      *echo.Echo
	traffic   http.Handler                                      // echo, and the extension methods it has no route for (methods.go)
	obs       *observe.Observer                                 // metrics, spans, access log (observe.go)
	routes    atomic.Pointer[map[*route]*observe.RouteCounters] // counters of the instrumented routes
	started   time.Time
	host      hook.Loader      // WASM plugins of every generation; may be nil
	recent    recentKeys       // keys invalidated here, read past the L1 for a moment
	filled    recentKeys       // keys stored here a moment ago: an L1 miss for them is asked of the shard
	fillBuf   fillBudget       // bytes buffered by fills in flight (fillbuf.go)
	now       func() time.Time // Options.Now; nil: time.Now
	busy      sync.Map         // key → *tee of a fill streaming a body it means to store (tee.go)
	member    string           // this gateway on the shards' roll of their gateways (shardmap/peers.go)

	// certs lists the TLS certificates served, for the status (edge.go).
	certs atomic.Pointer[func() any]

	source    config.Source
	reloadMu  sync.Mutex // serializes Reload and Close
	lastErr   error      // the last rejected reload, nil after a good one
	lastErrAt time.Time
	closed    bool
}

// New builds the first generation from cfg (already validated) and
// returns a Gateway ready to serve.
func New(cfg *config.Config, o Options) (*Gateway, error) {
	g := &Gateway{
		keys:      newKeyInterner(DefaultInternedKeys),
		views:     newViewMemo(int(cfg.ViewMemoBytes())), // server.memory_limit may cap it
		transport: o.Transport,
		log:       o.Logger,
		now:       o.Now,
		member:    memberID(),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.log = telemetry.WrapLogger(g.log) // request_id and trace_id on request-scoped lines
	g.obs = observe.New(o.Tracing, g.log)
	g.obs.SetOwner(g.owner)
	g.started = time.Now()
	if g.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 256
		t.ResponseHeaderTimeout = 0           // bounded per route by the origin timeout
		g.transport = origins.NewTransport(t) // plain-HTTP GETs on the caller's goroutine
	}
	g.transport = g.obs.WrapTransport(g.transport) // client spans, when tracing is on
	g.host = o.Plugins
	gen, err := g.build(cfg, nil, o.Source.String())
	if err != nil {
		if g.host != nil {
			_ = g.host.Close(context.Background())
		}
		return nil, err
	}
	g.instrument(gen)
	g.source = o.Source
	g.gen.Store(gen)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", g.readyz)
	h := g.obs.Wrap(g.handle) // tracing, when on
	e.Any("/*", h)
	e.Any("/", h)
	g.echo = e
	g.traffic = extensionMethods{echo: e, h: h}
	g.obs.Metrics().WatchState(g.metricsState)
	return g, nil
}

// Handler returns the traffic handler.
func (g *Gateway) Handler() http.Handler { return g.traffic }

// Generation returns the generation serving now.
func (g *Gateway) Generation() *Generation { return g.gen.Load() }

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within
// the configured shutdown timeout, and closes the generation.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	sc := g.gen.Load().Config.Server
	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	std := &http.Server{
		Handler:           g.traffic,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes(&g.gen.Load().Config.Limits), // limits.go
		ErrorLog:          errLog,
		ConnContext:       connContext, // request ids (observe.go)
	}
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	} = std
	if !sc.DisableFastPath {
		// Plain GET and HEAD on the lean loop; anything else goes to std
		// with the connection (see internal/h1).
		srv = &h1.Server{
			Handler:           g.echo,
			Fallback:          std,
			ReadHeaderTimeout: sc.ReadHeaderTimeout,
			IdleTimeout:       sc.IdleTimeout,
			ConnContext:       connContext,
			ErrorLog:          errLog,
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Reload builds the next generation from cfg (already validated) off the
// request path and publishes it. Shards that did not change keep their
// clients and L1; removed shards close once their in-flight calls finish
// (after the rebalance window when keys moved). On error nothing changes:
// the current generation keeps serving, and the error is kept for
// LastReloadError.
func (g *Gateway) Reload(cfg *config.Config, source string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.closed {
		return errors.New("gateway: closed")
	}
	old := g.gen.Load()
	next, err := g.build(cfg, old, source)
	g.obs.Metrics().Reload(err)
	if err != nil {
		g.lastErr, g.lastErrAt = err, time.Now()
		g.log.Error("reload rejected; the current configuration keeps serving", "source", source, "err", err)
		return err
	}
	g.instrument(next)
	g.gen.Store(next)
	g.lastErr = nil
	old.retire(next) // the shards next reads in its rebalance window stay open until it ends
	g.log.Info("configuration reloaded", "generation", next.ID, "source", source)
	return nil
}

// ReloadSource reads the configuration source again and reloads from it:
// what a file change, SIGHUP and the admin API call. An invalid
// configuration is rejected whole and the current generation keeps
// serving.
func (g *Gateway) ReloadSource() error {
	cfg, err := g.source.Load()
	if err != nil {
		g.obs.Metrics().Reload(err)
		g.reloadMu.Lock()
		g.lastErr, g.lastErrAt = err, time.Now()
		g.reloadMu.Unlock()
		g.log.Error("reload rejected; the current configuration keeps serving", "source", g.source.String(), "err", err)
		return err
	}
	return g.Reload(cfg, g.source.String())
}

// LastReloadError returns when the last rejected reload happened and its
// error, or a nil error if the last reload succeeded.
func (g *Gateway) LastReloadError() (time.Time, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.lastErrAt, g.lastErr
}

// Close releases the current generation's clients, with those of
// previous generations that its rebalance window still reads. Call it
// after Serve has returned.
func (g *Gateway) Close() {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.closed = true
	if gen := g.gen.Load(); gen != nil {
		gen.retire()
	}
	if g.host != nil {
		_ = g.host.Close(context.Background())
	}
}

// pluginCall records one guest call's duration in
// edgecache_plugin_call_duration_seconds.
func (g *Gateway) pluginCall(plugin string, h hook.ID, d time.Duration) {
	g.obs.Metrics().PluginCall(plugin, h.String(), d)
}

// timeNow is the time freshness is judged at (Options.Now).
func (g *Gateway) timeNow() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// clock returns the time freshness is judged at and the real time the
// shards and the L1 keep: one reading of the clock unless Options.Now is
// set.
func (g *Gateway) clock() (now, wall time.Time) {
	wall = time.Now()
	if g.now != nil {
		return g.now(), wall
	}
	return wall, wall
}
