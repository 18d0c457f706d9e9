package gateway

import (
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"
)

// readyz answers the traffic listener's readiness probe: 200 when a
// generation is loaded and either the embedded store is in use or at
// least one shard answers (connected, breaker closed); 503 otherwise.
// A gateway with some shards down still serves every request (those keys
// go to the origin), so taking it out of rotation would only move load;
// with every shard down it would send all traffic to the origins, and a
// load balancer should prefer another gateway.
func (g *Gateway) readyz(c echo.Context) error {
	gen := g.gen.Load()
	if gen == nil {
		return c.String(http.StatusServiceUnavailable, "not ready: no configuration loaded\n")
	}
	if gen.shards == nil {
		return c.String(http.StatusOK, "ready: embedded store\n")
	}
	var down []string
	for _, s := range gen.shards.Shards() {
		if !s.Healthy() {
			down = append(down, s.Name)
		}
	}
	n := len(gen.shards.Shards())
	if len(down) == n {
		return c.String(http.StatusServiceUnavailable, "not ready: no shard answers\n")
	}
	if len(down) > 0 {
		sort.Strings(down)
		return c.String(http.StatusOK, "ready: shards down: "+joinNames(down)+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func joinNames(s []string) string {
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
