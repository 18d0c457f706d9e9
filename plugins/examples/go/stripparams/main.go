//go:build wasip1

// Command stripparams is a key plugin: it drops tracking parameters
// (utm_*, fbclid, gclid, and any listed in the config) from the query and
// sorts the rest, so that links shared with different tracking tags hit
// the same cache entry.
//
// Key: scheme://host/path?sorted-query (no '?' when nothing is left).
//
// Config (optional): {"drop": ["ref", "mc_cid"], "drop_prefixes": ["pk_"]}
// adds names and name prefixes to drop; any other field rejects the config.
//
// It reads its config with a small parser (config.go) and sorts with
// slices, not encoding/json and sort: those pull reflect, strconv and
// their tables into the module, which made it 3.3 MB instead of 2.1, and
// every byte of a Go guest's code is compiled, mapped and kept by the
// host (RATIONALE.md, "Footprint").
package main

import (
	"slices"
	"strings"

	edgecache "github.com/edgecache/edgecache/plugins/sdk/go"
)

func main() {}

var (
	drop         = map[string]bool{"fbclid": true, "gclid": true, "dclid": true, "msclkid": true}
	dropPrefixes = []string{"utm_"}
)

func init() {
	edgecache.OnInit(func(config []byte) error {
		if len(config) == 0 {
			return nil
		}
		c, err := parseConfig(config)
		if err != nil {
			return err
		}
		for _, n := range c.drop {
			drop[n] = true
		}
		dropPrefixes = append(dropPrefixes, c.dropPrefixes...)
		return nil
	})
}

//go:wasmexport key
func key() int32 {
	var b strings.Builder
	b.WriteString(edgecache.Scheme())
	b.WriteString("://")
	b.WriteString(edgecache.Host())
	b.WriteString(edgecache.Path())
	if q := normalizeQuery(edgecache.Query()); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	edgecache.SetKey(b.String())
	return edgecache.OK
}

// normalizeQuery drops tracking and empty parameters and sorts the rest by
// name (stable: repeated names keep their order). Values stay as sent.
func normalizeQuery(raw string) string {
	if raw == "" {
		return ""
	}
	params := strings.Split(raw, "&")
	kept := params[:0]
	for _, p := range params {
		if p == "" {
			continue
		}
		name, _, _ := strings.Cut(p, "=")
		if tracking(strings.ToLower(name)) {
			continue
		}
		kept = append(kept, p)
	}
	slices.SortStableFunc(kept, func(a, b string) int { return strings.Compare(paramName(a), paramName(b)) })
	return strings.Join(kept, "&")
}

func paramName(p string) string {
	name, _, _ := strings.Cut(p, "=")
	return name
}

func tracking(name string) bool {
	if drop[name] {
		return true
	}
	for _, pre := range dropPrefixes {
		if strings.HasPrefix(name, pre) {
			return true
		}
	}
	return false
}
