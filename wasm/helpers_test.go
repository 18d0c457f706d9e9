package wasm_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

// testdata is where the plugins' built modules live.
const testdata = "../plugins/testdata"

func readModule(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		tb.Fatalf("%v (run `make plugins` to build the modules)", err)
	}
	return b
}

func newHost(tb testing.TB) *wasm.Host {
	tb.Helper()
	h, err := wasm.NewHost(context.Background(), wasm.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func load(tb testing.TB, h *wasm.Host, rel string, o hook.PluginOptions) *wasm.Plugin {
	tb.Helper()
	if o.Name == "" {
		o.Name = rel
	}
	p, err := h.Load(context.Background(), readModule(tb, rel), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	// Tests count instances: start them from a full pool.
	if err := p.WaitFull(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return p
}

func request(path, query string, hdr ...string) *hook.Request {
	r := &hook.Request{Method: "GET", Scheme: "https", Host: "shop.example", Path: path, RawQuery: query, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}
