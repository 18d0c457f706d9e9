// Command demo-origin serves the walkthrough's product API.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/edgecache/edgecache/examples/origin"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	latency := flag.Duration("latency", 0, "artificial latency added to every response")
	body := flag.Int("body-bytes", 0, "pad product bodies to about this many bytes")
	flag.Parse()
	s := origin.New(*latency)
	s.BodyBytes = *body
	log.Printf("demo origin on http://%s (latency %v)", *listen, *latency)
	srv := &http.Server{Addr: *listen, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
