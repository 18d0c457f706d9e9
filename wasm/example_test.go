package wasm_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

func ExampleHost_Load() {
	ctx := context.Background()
	// With CacheDir set, compiled plugins survive restarts.
	h, err := wasm.NewHost(ctx, wasm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(ctx)

	// minimal.wasm names the cache entry by the request path alone.
	bin, err := os.ReadFile("../plugins/testdata/wat/minimal.wasm")
	if err != nil {
		log.Fatal(err)
	}
	p, err := h.Load(ctx, bin, hook.PluginOptions{Name: "by-path", PoolSize: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	r := &hook.Request{Method: "GET", Scheme: "https", Host: "shop.example", Path: "/products/42", RawQuery: "utm_source=x"}
	for range 2 { // the second call is answered by the memo
		key, act, err := p.AppendKey(nil, r)
		fmt.Println(string(key), act, err)
	}
	s := p.Stats()
	fmt.Println("guest calls:", s.Hooks[hook.KeyHook].Calls, "memo hits:", s.MemoHits, "fields read:", s.MemoFields)
	// Output:
	// /products/42 replace <nil>
	// /products/42 replace <nil>
	// guest calls: 1 memo hits: 1 fields read: [path]
}
