package origins_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/edgecache/edgecache/origins"
)

// A pool is an http.RoundTripper: the request names the pool, the pool
// picks a server.
func ExampleNew() {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "a") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "b") }))
	defer b.Close()
	p, err := origins.New(origins.Options{
		Name:          "api",
		Servers:       []origins.Server{{URL: a.URL}, {URL: b.URL}},
		MaxConcurrent: 16,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	client := &http.Client{Transport: p}
	for range 4 {
		resp, err := client.Get("http://api/hello")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
	}
	fmt.Println()
	// Output: baba
}
