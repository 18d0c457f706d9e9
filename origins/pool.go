package origins

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrOverloaded is returned when a request found the pool at its
// MaxConcurrent cap and could not wait (queue full, or QueueTimeout
// passed). Nothing was sent to the origin.
var ErrOverloaded = errors.New("origins: pool overloaded")

// ErrUnavailable is returned (wrapped with the last connection error)
// when no server the request was tried on could be connected to.
var ErrUnavailable = errors.New("origins: no server reachable")

// Pool is an origin pool: an http.RoundTripper that sends each request
// to one of its servers. Build it with New; Close it when no generation
// uses it any more.
type Pool struct {
	name    string
	opts    Options
	servers []*server
	seq     []int // weighted round-robin order of server indexes
	rr      atomic.Uint64
	tr      http.RoundTripper
	own     *Transport // nil when Options.Transport was given

	sem     chan struct{} // nil: no cap
	waiting atomic.Int64
	tokens  atomic.Int64 // retry budget, in thousandths of a retry
	perReq  int64        // tokens a request earns
	maxTok  int64

	inflight  atomic.Int64
	ejectMu   sync.Mutex // serializes ejections (the share cap)
	stop      chan struct{}
	closeOnce sync.Once
	checkers  sync.WaitGroup
}

var _ http.RoundTripper = (*Pool)(nil)

type server struct {
	url    *url.URL
	weight int

	up           atomic.Bool  // the active check's verdict
	ejectedUntil atomic.Int64 // unix nanoseconds; 0: not ejected
	ejections    atomic.Int64 // consecutive ejections, for the growing time
	fails        atomic.Int64 // consecutive failures
	inflight     atomic.Int64
	requests     atomic.Uint64
	failures     atomic.Uint64
	retries      atomic.Uint64
	ejectTotal   atomic.Uint64
	lat          latency
}

// New builds a pool from o and starts its health checkers.
func New(o Options) (*Pool, error) {
	o = o.withDefaults()
	if len(o.Servers) == 0 {
		return nil, fmt.Errorf("origins: pool %q: no servers", o.Name)
	}
	switch o.Balance {
	case RoundRobin, LeastRequests, Hash:
	default:
		return nil, fmt.Errorf("origins: pool %q: unknown balance %q", o.Name, o.Balance)
	}
	p := &Pool{name: o.Name, opts: o, stop: make(chan struct{})}
	weights := make([]int, len(o.Servers))
	for i, s := range o.Servers {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("origins: pool %q: servers[%d]: want http(s)://host[:port], got %q", o.Name, i, s.URL)
		}
		w := max(s.Weight, 1)
		srv := &server{url: &url.URL{Scheme: u.Scheme, Host: u.Host}, weight: w}
		srv.up.Store(true)
		p.servers = append(p.servers, srv)
		weights[i] = w
	}
	p.seq = smoothWeighted(weights)
	if o.Transport != nil {
		p.tr = o.Transport
	} else {
		t, err := newTransport(o)
		if err != nil {
			return nil, fmt.Errorf("origins: pool %q: %w", o.Name, err)
		}
		own := NewTransport(t)
		p.tr, p.own = own, own
	}
	if o.MaxConcurrent > 0 {
		p.sem = make(chan struct{}, o.MaxConcurrent)
	}
	if o.RetryBudget > 0 {
		p.perReq = int64(o.RetryBudget * 1000)
		p.maxTok = minRetryTokens * 1000
	}
	p.tokens.Store(p.maxTok)
	if o.Health.Path != "" {
		for _, s := range p.servers {
			p.checkers.Add(1)
			go p.check(s)
		}
	}
	return p, nil
}

// newTransport is the net/http side of the pool's own transport (New
// wraps it in a Transport): its TLS and connection options. HTTP/2 is
// negotiated over TLS when the server offers it.
func newTransport(o Options) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 0 // bounded per server below
	t.MaxIdleConnsPerHost = o.MaxIdleConnsPerServer
	t.MaxConnsPerHost = o.MaxConnsPerServer
	t.IdleConnTimeout = o.IdleConnTimeout
	t.ResponseHeaderTimeout = 0 // the caller's context bounds a request
	tc := &tls.Config{ServerName: o.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if o.TLS.CAFile != "" {
		pem, err := os.ReadFile(o.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", o.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.TLS.CertFile != "" || o.TLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLS.CertFile, o.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	t.TLSClientConfig = tc
	return t, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// RetryAfter is how long a client refused with ErrOverloaded or
// ErrUnavailable should wait (Options.RetryAfter).
func (p *Pool) RetryAfter() time.Duration { return p.opts.RetryAfter }

type keyCtx struct{}

// WithKey returns ctx carrying the cache key a Hash pool places a
// request by.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// RoundTrip sends req to one of the pool's servers (see the package
// doc). req's URL names the pool; its scheme and host are replaced by the
// server's. A req.Host equal to the URL's host (what http.NewRequest
// sets) is replaced by the server's host too; any other Host is kept.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	p.inflight.Add(1)
	p.earn()
	key, _ := ctx.Value(keyCtx{}).(string)
	first := p.pick(key, nil)
	resp, err := p.send(req, first, false)
	tried := first
	if err != nil && retryable(req, err) && ctx.Err() == nil {
		if next := p.pick(key, first); next != first && p.spend() {
			next.retries.Add(1)
			tried = next
			resp, err = p.send(req, next, true)
		}
	}
	if err != nil {
		p.release()
		if connectFailure(err) {
			return nil, fmt.Errorf("origins: pool %q (%s): %w: %w", p.name, tried.url.Host, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("origins: pool %q (%s): %w", p.name, tried.url.Host, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection is the caller's from now on; the
		// body must stay an io.ReadWriteCloser.
		tried.inflight.Add(-1)
		p.release()
		return resp, nil
	}
	resp.Body = &body{ReadCloser: resp.Body, done: func() {
		tried.inflight.Add(-1)
		p.release()
	}}
	return resp, nil
}

// send makes one attempt on s (retry: a second one). On an error it has
// already given back s's in-flight count; on a response the body does.
func (p *Pool) send(req *http.Request, s *server, retry bool) (*http.Response, error) {
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Scheme, u.Host = s.url.Scheme, s.url.Host
	out.URL = &u
	if req.Host == req.URL.Host {
		out.Host = ""
	}
	if retry && req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		// The first attempt may have consumed the body.
		if b, err := req.GetBody(); err == nil {
			out.Body = b
		}
	}
	s.requests.Add(1)
	s.inflight.Add(1)
	start := time.Now()
	resp, err := p.tr.RoundTrip(out)
	s.lat.observe(time.Since(start))
	if err != nil {
		s.inflight.Add(-1)
		s.failures.Add(1)
		if connectFailure(err) {
			p.failed(s)
		}
		return nil, err
	}
	if resp.StatusCode >= 500 {
		s.failures.Add(1)
		p.failed(s)
	} else {
		s.fails.Store(0)
	}
	return resp, nil
}

// acquire takes an admission slot, waiting in the bounded queue.
func (p *Pool) acquire(ctx context.Context) error {
	if p.sem == nil {
		return nil
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	default:
	}
	if p.waiting.Add(1) > int64(p.opts.MaxQueue) {
		p.waiting.Add(-1)
		return fmt.Errorf("%w: %q: %d in flight and the queue full", ErrOverloaded, p.name, p.opts.MaxConcurrent)
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(p.opts.QueueTimeout)
	defer t.Stop()
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %q: no slot within %v", ErrOverloaded, p.name, p.opts.QueueTimeout)
	case <-ctx.Done():
		// Still queued when the request's deadline came: the origin was
		// never asked, which is what ErrOverloaded says.
		return fmt.Errorf("%w: %q: %w while queued", ErrOverloaded, p.name, ctx.Err())
	}
}

func (p *Pool) release() {
	p.inflight.Add(-1)
	if p.sem != nil {
		<-p.sem
	}
}

// earn adds one request's share to the retry budget; spend takes one
// retry from it.
func (p *Pool) earn() {
	if p.tokens.Load() < p.maxTok {
		p.tokens.Add(p.perReq)
	}
}

func (p *Pool) spend() bool {
	if p.tokens.Add(-1000) >= 0 {
		return true
	}
	p.tokens.Add(1000)
	return false
}

// body gives back the admission slot and the server's in-flight count
// when the response is read to its end or closed, whichever comes first.
type body struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *body) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// retryable reports whether a failed attempt may go to another server:
// an idempotent request whose body can be sent again, that failed to
// connect or lost its connection before any response byte. RoundTrip
// returning an error means no response header was read.
func retryable(req *http.Request, err error) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	return connectFailure(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// connectFailure reports whether err is a failure to connect (refused,
// unreachable, dial timeout): the server never saw the request.
func connectFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// Close stops the health checkers and, once no request is in flight
// (they keep being served), closes the idle connections.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.checkers.Wait()
		if p.own == nil {
			return
		}
		if p.inflight.Load() == 0 {
			p.own.CloseIdleConnections()
			return
		}
		go func() {
			for p.inflight.Load() > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			p.own.CloseIdleConnections()
		}()
	})
}

// smoothWeighted returns the order of nginx's smooth weighted round
// robin over one full cycle (the sum of the weights): heavy servers are
// spread through the cycle, not bunched.
func smoothWeighted(weights []int) []int {
	total := 0
	for _, w := range weights {
		total += w
	}
	cur := make([]int, len(weights))
	seq := make([]int, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, best)
	}
	return seq
}

// available reports whether s may be picked now.
func (s *server) available(now int64) bool {
	return s.up.Load() && s.ejectedUntil.Load() <= now
}

// pick returns a server for a request with key ("" none), other than
// not (a retry). Among available servers if there is one, else among all
// (fail open).
func (p *Pool) pick(key string, not *server) *server {
	now := time.Now().UnixNano()
	if s := p.pickFrom(key, not, now, true); s != nil {
		return s
	}
	if s := p.pickFrom(key, not, now, false); s != nil {
		return s
	}
	return p.servers[0] // one server, and it is not
}

func (p *Pool) pickFrom(key string, not *server, now int64, onlyAvailable bool) *server {
	ok := func(s *server) bool { return s != not && (!onlyAvailable || s.available(now)) }
	switch {
	case p.opts.Balance == Hash && key != "":
		var best *server
		bestScore := math.Inf(-1)
		for _, s := range p.servers {
			if !ok(s) {
				continue
			}
			if sc := rendezvous(key, s); sc > bestScore {
				best, bestScore = s, sc
			}
		}
		return best
	case p.opts.Balance == LeastRequests:
		n := len(p.servers)
		a, b := p.servers[rand.IntN(n)], p.servers[rand.IntN(n)]
		if ok(a) && ok(b) {
			// fewer in flight per unit of weight
			if (b.inflight.Load()+1)*int64(a.weight) < (a.inflight.Load()+1)*int64(b.weight) {
				return b
			}
			return a
		}
		if ok(a) {
			return a
		}
		if ok(b) {
			return b
		}
		// Both unavailable: fall through to a scan in round-robin order.
	}
	// A server that is out costs its turn, not a double share to the
	// next in order: each skip takes a new turn.
	n := uint64(len(p.seq))
	for range n {
		if s := p.servers[p.seq[p.rr.Add(1)%n]]; ok(s) {
			return s
		}
	}
	for _, s := range p.servers { // the turns above can race past one
		if ok(s) {
			return s
		}
	}
	return nil
}

// rendezvous is s's weighted rendezvous (highest random weight) score
// for key: -weight/ln(h) with h uniform in (0,1), so each server wins a
// share of keys proportional to its weight. The hash is FNV-1a, stable
// across processes, so every gateway sends a key to the same server.
func rendezvous(key string, s *server) float64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 1099511628211
	}
	h = (h ^ 0xff) * 1099511628211
	for i := 0; i < len(s.url.Host); i++ {
		h = (h ^ uint64(s.url.Host[i])) * 1099511628211
	}
	// splitmix64 finalizer: FNV's low bits mix poorly.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -float64(s.weight) / math.Log(u)
}
