package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/edgecache/edgecache/policies"
)

// PurgeRequest names what to purge: exactly one of Key, URL or Tag.
type PurgeRequest struct {
	// Key is a cache key as the key policy builds it.
	Key string `json:"key,omitempty"`
	// URL is an absolute URL as clients request it (its host selects the
	// route, whose key policy names the entry). Every Vary variant of it
	// goes too.
	URL string `json:"url,omitempty"`
	// Tag is a surrogate key (Surrogate-Key / Cache-Tag of the responses).
	Tag string `json:"tag,omitempty"`
	// Soft marks the entries stale instead of removing them: they are
	// revalidated before use and still serve stale-if-error.
	Soft bool `json:"soft,omitempty"`
}

// PurgeResult says what a purge did.
type PurgeResult struct {
	// Keys is the number of entries removed or marked stale (a URL purge
	// counts its Vary marker as one).
	Keys int `json:"keys"`
}

// ErrBadPurge reports a PurgeRequest that names nothing, or more than one
// thing, or a URL that no route serves.
var ErrBadPurge = errors.New("gateway: bad purge request")

// Purge removes (or, soft, marks stale) cached entries by key, URL or tag,
// for every gateway: through Valkey, so every gateway's L1 drops them. A
// tag purge is one command per shard (see shardmap.Shard.PurgeTag).
func (g *Gateway) Purge(ctx context.Context, req PurgeRequest) (PurgeResult, error) {
	gen := g.gen.Load()
	if gen == nil {
		return PurgeResult{}, errors.New("gateway: closed")
	}
	n := 0
	for _, s := range []string{req.Key, req.URL, req.Tag} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return PurgeResult{}, fmt.Errorf("%w: give exactly one of key, url and tag", ErrBadPurge)
	}
	now := g.timeNow() // the stale-at of a soft purge
	if req.Tag != "" {
		k, err := gen.store.purgeTag(ctx, req.Tag, req.Soft, now)
		return PurgeResult{Keys: k}, err
	}
	key := req.Key
	if req.URL != "" {
		var err error
		if key, err = gen.urlKey(req.URL); err != nil {
			return PurgeResult{}, err
		}
	}
	g.recent.add(key)
	if req.Soft {
		ok, err := gen.store.softPurge(ctx, key, now)
		if ok {
			return PurgeResult{Keys: 1}, err
		}
		return PurgeResult{}, err
	}
	_, _, err := gen.store.get(ctx, key, time.Now()) // reads a moved key's previous owner too
	found := err == nil
	if err := gen.store.del(ctx, key); err != nil {
		return PurgeResult{}, err
	}
	if found {
		return PurgeResult{Keys: 1}, nil
	}
	return PurgeResult{}, nil
}

// urlKey is the key a GET of rawURL is cached under.
func (gen *Generation) urlKey(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%w: want an absolute http(s) URL, got %q", ErrBadPurge, rawURL)
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	rt := gen.match(u.Host, path)
	if rt == nil {
		return "", fmt.Errorf("%w: no route serves %q", ErrBadPurge, rawURL)
	}
	r := policies.Request{Method: http.MethodGet, Scheme: u.Scheme, Host: canonicalHost(u.Host), Path: u.EscapedPath(), RawQuery: u.RawQuery}
	return string(rt.key.AppendKey(nil, &r)), nil
}
