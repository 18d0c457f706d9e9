// Package origin is the demo origin of the walkthrough: the seed's product
// API. GET /products/{id} returns a product as JSON with Cache-Control
// max-age=3600, an ETag and Last-Modified; PUT /products/{id}?price=N
// changes a price. It counts the requests it serves, so tests and demos
// can see what reached the origin.
package origin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Product is what the API serves.
type Product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
	// Padding makes bodies a chosen size for benchmarks.
	Padding string `json:"padding,omitempty"`
}

// Server is the product API.
type Server struct {
	// Latency is added before every response.
	Latency time.Duration
	// BodyBytes, when set, pads product bodies to about this size.
	BodyBytes int

	requests atomic.Int64
	mu       sync.Mutex
	prices   map[int]float64
	modified time.Time
}

// New returns a product API that answers after latency.
func New(latency time.Duration) *Server {
	return &Server{Latency: latency, prices: map[int]float64{}, modified: time.Now().UTC().Truncate(time.Second)}
}

// Requests returns how many requests the origin has served.
func (s *Server) Requests() int64 { return s.requests.Load() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/products/")
	if !ok {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprintln(w, "edgecache demo origin: try GET /products/12345")
			return
		}
		http.NotFound(w, r)
		return
	}
	id, err := strconv.Atoi(rest)
	if err != nil || id <= 0 {
		w.Header().Set("Cache-Control", "max-age=30")
		http.Error(w, `{"error":"no such product"}`, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.get(w, r, id)
	case http.MethodPut, http.MethodPost:
		p, err := strconv.ParseFloat(r.URL.Query().Get("price"), 64)
		if err != nil {
			http.Error(w, `{"error":"price must be a number"}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.prices[id] = p
		s.modified = time.Now().UTC().Truncate(time.Second)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, id int) {
	s.mu.Lock()
	price, ok := s.prices[id]
	if !ok {
		price = float64(id%1000) + 0.99
	}
	modified := s.modified
	s.mu.Unlock()
	p := Product{ID: id, Name: fmt.Sprintf("Product %d", id), Price: price}
	body, _ := json.Marshal(p)
	if s.BodyBytes > len(body) {
		p.Padding = strings.Repeat("x", s.BodyBytes-len(body)-len(`,"padding":""`))
		body, _ = json.Marshal(p)
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", etag)
	h.Set("Last-Modified", modified.Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
