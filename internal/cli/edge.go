package cli

import (
	"log/slog"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/listen"
)

// newEdge builds the traffic listener's transport for cfg around the
// gateway's handler.
func newEdge(cfg *config.Config, g *gateway.Gateway, log *slog.Logger) (*listen.Server, error) {
	return listen.New(cfg, g.Handler(), listen.Options{Logger: log})
}

// reloadEdge hands the configuration the gateway now serves to the
// listener; certificates that do not load leave the current ones serving.
func reloadEdge(edge *listen.Server, g *gateway.Gateway, log *slog.Logger) {
	if err := edge.Reload(g.Generation().Config); err != nil {
		log.Error("certificates rejected; the current ones keep serving", "err", err)
	}
}
