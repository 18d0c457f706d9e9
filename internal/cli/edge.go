package cli

import (
	"log/slog"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/listen"
	"github.com/edgecache/edgecache/shardmap"
)

// newEdge builds the traffic listener's transport for cfg around the
// gateway's handler. The returned close releases the ACME storage.
func newEdge(cfg *config.Config, g *gateway.Gateway, log *slog.Logger) (*listen.Server, func(), error) {
	o := listen.Options{Logger: log, Registry: g.Registry()}
	closeFn := func() {}
	if a := cfg.Server.TLS.ACME; a != nil && a.Storage == "valkey" {
		// The first shard holds every certificate and lock: one place, so
		// that the lock of an issuance is where every gateway looks.
		sc := cfg.Shards[0]
		// The same spec (TLS, credentials) as the cache's shard.
		st, err := shardmap.NewCertStorage(shardmap.SpecOf(sc), shardmap.OptionsOf(cfg.Valkey, nil))
		if err != nil {
			return nil, nil, err
		}
		o.ACMEStorage, closeFn = st, st.Close
	}
	s, err := listen.New(cfg, g.Handler(), o)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	g.SetCertificates(func() any { return s.Certificates() })
	return s, closeFn, nil
}

// reloadEdge hands the configuration the gateway now serves to the
// listener; certificates that do not load leave the current ones serving.
func reloadEdge(edge *listen.Server, g *gateway.Gateway, log *slog.Logger) {
	if err := edge.Reload(g.Generation().Config); err != nil {
		log.Error("certificates rejected; the current ones keep serving", "err", err)
	}
}
