package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/origins"
)

// View is what the admin API and the status page (internal/admin) see of
// a gateway: its state, read-only, and the two actions an operator may
// take, reload and purge. *Gateway implements it; the admin reaches no
// further into the gateway than this.
type View interface {
	// Generation returns the generation serving now; its exported fields
	// and methods must not be used to change it.
	Generation() *Generation
	// LastReloadError is the last rejected reload (nil error: none since
	// the last good one).
	LastReloadError() (time.Time, error)
	// ReloadSource reads the configuration source again and reloads.
	ReloadSource() error
	// Purge removes or marks stale what req names.
	Purge(ctx context.Context, req PurgeRequest) (PurgeResult, error)
	// Source is where the configuration comes from.
	Source() config.Source
	// Metrics are the gateway's metrics.
	Metrics() *metrics.Metrics
	// Certificates lists the TLS certificates served (nil: none known).
	Certificates() any
	// Logger is the gateway's logger.
	Logger() *slog.Logger
	// Started is when the gateway was built.
	Started() time.Time
}

var _ View = (*Gateway)(nil)

// Source returns where the configuration comes from.
func (g *Gateway) Source() config.Source { return g.source }

// Metrics returns the gateway's metrics (served on the admin listener).
func (g *Gateway) Metrics() *metrics.Metrics { return g.obs.Metrics() }

// Logger returns the gateway's logger.
func (g *Gateway) Logger() *slog.Logger { return g.log }

// Started returns when the gateway was built.
func (g *Gateway) Started() time.Time { return g.started }

// EmbeddedStats are the embedded store's size.
type EmbeddedStats struct {
	Entries  int
	Bytes    uint64
	MaxBytes int64
}

// Embedded returns the embedded store's size, and false when shards are
// in use instead.
func (gen *Generation) Embedded() (EmbeddedStats, bool) {
	if gen.mem == nil {
		return EmbeddedStats{}, false
	}
	return EmbeddedStats{Entries: gen.mem.Len(), Bytes: gen.mem.Bytes(), MaxBytes: gen.Config.Embedded.MaxBytes}, true
}

// Pools returns the stats of the generation's origin pools, by name.
func (gen *Generation) Pools() []origins.PoolStats { return gen.poolStats() }
