//go:build wasip1

// Command stripparams is a key plugin: it drops tracking parameters
// (utm_*, fbclid, gclid, and any listed in the config) from the query and
// sorts the rest, so that links shared with different tracking tags hit
// the same cache entry.
//
// Key: scheme://host/path?sorted-query (no '?' when nothing is left).
//
// Config (optional): {"drop": ["ref", "mc_cid"], "drop_prefixes": ["pk_"]}
// adds names and name prefixes to drop.
package main

import (
	"encoding/json"
	"sort"
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
		var c struct {
			Drop         []string `json:"drop"`
			DropPrefixes []string `json:"drop_prefixes"`
		}
		if err := json.Unmarshal(config, &c); err != nil {
			return err
		}
		for _, n := range c.Drop {
			drop[n] = true
		}
		dropPrefixes = append(dropPrefixes, c.DropPrefixes...)
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
	sort.SliceStable(kept, func(i, j int) bool { return paramName(kept[i]) < paramName(kept[j]) })
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
