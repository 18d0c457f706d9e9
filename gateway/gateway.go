package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/edgecache/edgecache/config"
)

// Defaults of the gateway's in-process memos.
const (
	// DefaultInternedKeys bounds the key interner (entries).
	DefaultInternedKeys = 1 << 18
	// DefaultViewMemoBytes bounds the decoded-entry memo by the bytes of
	// the entries it keeps alive.
	DefaultViewMemoBytes = 256 << 20
)

var echo502 = echo.NewHTTPError(http.StatusBadGateway, "edgecache: origin unavailable")

// Options are the parts of a Gateway that do not come from the config
// file. Zero values mean the default.
type Options struct {
	// Logger receives the gateway's logs (default slog.Default()).
	Logger *slog.Logger
	// Transport carries origin requests (default: a tuned clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
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
}

// New builds the first generation from cfg (already validated) and
// returns a Gateway ready to serve.
func New(cfg *config.Config, o Options) (*Gateway, error) {
	g := &Gateway{
		keys:      newKeyInterner(DefaultInternedKeys),
		views:     newViewMemo(DefaultViewMemoBytes),
		transport: o.Transport,
		log:       o.Logger,
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 256
		t.ResponseHeaderTimeout = 0 // bounded per route by the origin timeout
		g.transport = t
	}
	gen, err := build(g.nextID.Add(1), cfg, g.transport, g.log)
	if err != nil {
		return nil, err
	}
	g.gen.Store(gen)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.Any("/*", g.handle)
	e.Any("/", g.handle)
	g.echo = e
	return g, nil
}

// Handler returns the traffic handler.
func (g *Gateway) Handler() http.Handler { return g.echo }

// Generation returns the generation serving now.
func (g *Gateway) Generation() *Generation { return g.gen.Load() }

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within
// the configured shutdown timeout, and closes the generation.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	sc := g.gen.Load().Config.Server
	srv := &http.Server{
		Handler:           g.echo,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
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

// Close releases the current generation's clients. Call it after Serve
// has returned.
func (g *Gateway) Close() {
	if gen := g.gen.Swap(nil); gen != nil {
		gen.close()
	}
}
