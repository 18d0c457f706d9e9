package listen

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go/http3"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/internal/h2"
	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/telemetry"
)

// Defaults of the listener that are not configuration.
const (
	// DefaultAltSvcMaxAge is how long a client may remember that HTTP/3
	// is offered (Alt-Svc ma, seconds: one day).
	DefaultAltSvcMaxAge = 86400
	// ticketKeysKept is how many session-ticket keys decrypt: the newest
	// (which also encrypts) and the two before it.
	ticketKeysKept = 3
)

// Options are the parts of a Server that do not come from the config.
type Options struct {
	// Logger receives the listener's logs (default slog.Default()).
	Logger *slog.Logger
	// Registry, when set, gets the TLS metrics.
	Registry prometheus.Registerer
	// ACMEStorage replaces certmagic's file storage (server.tls.acme
	// storage "valkey": a shardmap.CertStorage).
	ACMEStorage certmagic.Storage
	// ACMERenewCheck is how often certmagic looks for certificates to
	// renew (zero: its default, 10 minutes).
	ACMERenewCheck time.Duration
	// OnACMEEvent is told certmagic's events (cert_obtaining,
	// cert_obtained, cert_failed...).
	OnACMEEvent func(event string)
}

// Server is the traffic listener's transport. Build it with New, run it
// with Serve, and Reload it with every new configuration.
type Server struct {
	h   http.Handler
	log *slog.Logger
	m   *metrics.TLS

	mu      sync.Mutex // serializes Reload and ticket rotation
	cfg     atomic.Pointer[config.Config]
	certs   atomic.Pointer[certSet]
	conf    atomic.Pointer[tls.Config] // the current generation's TLS config
	tickets [][32]byte                 // newest first
	watchMu sync.Mutex
	unwatch context.CancelFunc
	watched []string
	acme    *acme
	base    *tls.Config // what the listeners hold: defers to conf per handshake
}

// New checks cfg's transport settings and loads its certificates.
func New(cfg *config.Config, h http.Handler, o Options) (*Server, error) {
	s := &Server{h: h, log: o.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.m = metrics.NewTLS(o.Registry, s.metricCerts)
	if a := cfg.Server.TLS.ACME; a != nil {
		var err error
		if s.acme, err = newACME(cfg, o, s.log); err != nil {
			return nil, err
		}
	}
	s.base = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.conf.Load(), nil }}
	if err := s.rotateTickets(); err != nil {
		return nil, err
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload loads cfg's certificates and client CA and swaps them in. On
// error nothing changes: the current certificates keep serving.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &cfg.Server.TLS
	set, err := loadCerts(t.Certificates, time.Now())
	if err != nil {
		return err
	}
	conf, err := s.tlsConfig(cfg)
	if err != nil {
		return err
	}
	conf.SetSessionTicketKeys(s.tickets)
	s.cfg.Store(cfg)
	s.certs.Store(set)
	s.conf.Store(conf)
	if s.acme != nil {
		s.acme.setHosts(cfg)
	}
	return nil
}

func (s *Server) tlsConfig(cfg *config.Config) (*tls.Config, error) {
	t := &cfg.Server.TLS
	conf := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		GetCertificate:   s.getCertificate,
		VerifyConnection: s.handshakeOK,
		NextProtos:       []string{"h2", "http/1.1"},
	}
	if t.MinVersion == "1.3" {
		conf.MinVersion = tls.VersionTLS13
	}
	if s.acme != nil && !cfg.Server.TLS.ACME.DisableTLSALPNChallenge {
		conf.NextProtos = append(conf.NextProtos, acmeTLSALPN)
	}
	if t.ClientCAFile != "" {
		pool, err := config.LoadCertPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("listen: server.tls.client_ca_file: %w", err)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == "require" {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// getCertificate picks the certificate for a handshake: see the package
// documentation for the order.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.certs.Load()
	if s.acme != nil && slices.Contains(hello.SupportedProtos, acmeTLSALPN) {
		return s.acme.getCertificate(hello)
	}
	if c := set.lookup(hello.ServerName); c != nil {
		return c, nil
	}
	if s.acme != nil && (hello.ServerName != "" || set.def == nil) {
		c, err := s.acme.getCertificate(hello)
		if err == nil || set.def == nil {
			return c, err
		}
	}
	if set.def == nil {
		return nil, errors.New("listen: no certificate")
	}
	return set.def, nil
}

func (s *Server) handshakeOK(cs tls.ConnectionState) error {
	if c := s.m.HandshakeOK[cs.Version]; c != nil {
		c.Inc()
	}
	return nil
}

// Certificates lists the certificates served, for the admin status.
func (s *Server) Certificates() []CertInfo {
	out := slices.Clone(s.certs.Load().infos)
	if s.acme != nil {
		out = append(out, s.acme.infos()...)
	}
	return out
}

func (s *Server) metricCerts() []metrics.Cert {
	var out []metrics.Cert
	for _, ci := range s.Certificates() {
		for _, n := range ci.Names {
			out = append(out, metrics.Cert{Name: n, Source: ci.Source, NotAfter: ci.NotAfter})
		}
	}
	return out
}

// rotateTickets makes a new session-ticket key and keeps the last few.
func (s *Server) rotateTickets() error {
	var k [32]byte
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return fmt.Errorf("listen: session ticket key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickets = append([][32]byte{k}, s.tickets...)
	if len(s.tickets) > ticketKeysKept {
		s.tickets = s.tickets[:ticketKeysKept]
	}
	if c := s.conf.Load(); c != nil {
		c.SetSessionTicketKeys(s.tickets)
	}
	return nil
}

// TLSConfig is the configuration the TLS listeners hold; it defers to the
// current generation at every handshake.
func (s *Server) TLSConfig() *tls.Config { return s.base }

// Serve serves ln until ctx is done. Without TLS and h2c it hands ln
// (behind the PROXY protocol reader, if configured) to plain: the
// gateway's fast path.
func (s *Server) Serve(ctx context.Context, ln net.Listener, plain func(context.Context, net.Listener) error) error {
	cfg := s.cfg.Load()
	sc := cfg.Server
	ln, err := proxyListener(ln, sc.ProxyProtocol)
	if err != nil {
		return err
	}
	if !sc.TLS.Enabled() && !sc.H2C {
		return plain(ctx, ln)
	}
	if sc.TLS.Enabled() {
		go s.watchLoop(ctx)
		go s.rotateLoop(ctx, sc.TLS.SessionTicketRotation)
		if s.acme != nil {
			if err := s.acme.start(ctx, cfg); err != nil {
				return err
			}
		}
	}
	errLog := log.New(&handshakeLog{s: s, w: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn).Writer()}, "", 0)
	h := s.h
	var servers []shutdowner
	errc := make(chan error, 3)
	if sc.HTTP3 {
		h3, h3ln, err := s.listenHTTP3(ln.Addr(), cfg)
		if err != nil {
			return err
		}
		h = altSvc(h, ln.Addr())
		servers = append(servers, h3)
		go func() { errc <- h3.Serve(h3ln) }()
	}
	if sc.RedirectListen != "" {
		rs, rln, err := s.listenRedirect(sc.RedirectListen, ln.Addr())
		if err != nil {
			return err
		}
		rs.ErrorLog = errLog
		servers = append(servers, rs)
		go func() { errc <- rs.Serve(rln) }()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.HTTP2.MaxHeaderListBytes,
		ErrorLog:          errLog,
		ConnContext:       telemetry.ConnContext,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: sc.HTTP2.MaxConcurrentStreams,
		},
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	var tcp interface {
		shutdowner
		Serve(net.Listener) error
	} = srv
	if sc.TLS.Enabled() {
		srv.Protocols.SetHTTP2(true)
		ln = tls.NewListener(ln, s.base)
		if !sc.DisableFastPath {
			tcp = fastPath(h, srv, sc)
		}
	}
	if sc.H2C {
		srv.Protocols.SetUnencryptedHTTP2(true)
		if !sc.TLS.Enabled() && !sc.DisableFastPath && sc.HTTP2.Server == config.HTTP2ServerInline {
			// HTTP/1.1 on the fast path, the h2c preface to internal/h2.
			tcp = fastPath(h, srv, sc)
		}
	}
	servers = append(servers, tcp)
	go func() { errc <- tcp.Serve(ln) }()
	select {
	case err := <-errc:
		// The failed server's error is the one Serve reports; a failure
		// to stop the others is logged, not lost, and not mixed into it.
		if serr := s.shutdown(servers, sc.ShutdownTimeout); serr != nil {
			s.log.Error("stopping the other servers after one failed", "err", serr)
		}
		return err
	case <-ctx.Done():
	}
	return s.shutdown(servers, sc.ShutdownTimeout)
}

type shutdowner interface{ Shutdown(context.Context) error }

// fastPath serves TLS connections that chose HTTP/1.1 (or no protocol) by
// ALPN on the gateway's HTTP/1.1 loop, after the handshake; h2, ACME's
// acme-tls/1, a failed handshake and every request the loop does not
// serve go to srv with the connection. Shutting it down shuts srv down.
func fastPath(h http.Handler, srv *http.Server, sc config.Server) *h1.Server {
	s := &h1.Server{
		Handler:           h,
		Fallback:          srv,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		ConnContext:       srv.ConnContext,
		ErrorLog:          srv.ErrorLog,
	}
	if sc.HTTP2.Server == config.HTTP2ServerInline {
		s.HTTP2 = &h2.Server{
			Handler:              h,
			MaxConcurrentStreams: sc.HTTP2.MaxConcurrentStreams,
			MaxHeaderListBytes:   sc.HTTP2.MaxHeaderListBytes,
			PrefaceTimeout:       srv.ReadHeaderTimeout,
			IdleTimeout:          srv.IdleTimeout,
			ConnContext:          srv.ConnContext,
			ErrorLog:             srv.ErrorLog,
		}
	}
	return s
}

func (s *Server) shutdown(servers []shutdowner, timeout time.Duration) error {
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handshakeLog counts the TLS handshake failures that net/http reports
// on its error log, and passes every line on.
type handshakeLog struct {
	s *Server
	w io.Writer
}

func (l *handshakeLog) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "TLS handshake error") {
		l.s.m.HandshakeError.Inc()
	}
	return l.w.Write(p)
}

func (s *Server) rotateLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.rotateTickets(); err != nil {
				s.log.Error("session ticket rotation", "err", err)
			}
		}
	}
}

// watchLoop reloads the certificates when one of their files changes; it
// re-arms the watches when a reload changed the files.
func (s *Server) watchLoop(ctx context.Context) {
	s.rewatch(ctx)
	<-ctx.Done()
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.unwatch != nil {
		s.unwatch()
	}
}

func (s *Server) rewatch(ctx context.Context) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	files := s.certs.Load().files
	if slices.Equal(files, s.watched) && s.unwatch != nil {
		return
	}
	if s.unwatch != nil {
		s.unwatch()
	}
	wctx, cancel := context.WithCancel(ctx)
	s.unwatch, s.watched = cancel, files
	for _, f := range files {
		if err := config.Watch(wctx, f, config.DefaultDebounce, func() { s.fileChanged(ctx, f) }); err != nil {
			s.log.Warn("cannot watch a certificate file; a reload still reads it", "file", f, "err", err)
		}
	}
}

func (s *Server) fileChanged(ctx context.Context, file string) {
	if err := s.Reload(s.cfg.Load()); err != nil {
		s.log.Error("certificate change rejected; the current certificates keep serving", "file", file, "err", err)
		return
	}
	s.log.Info("certificates reloaded", "file", file)
	go s.rewatch(ctx)
}

// proxyListener reads PROXY protocol headers from the trusted networks;
// a header from anyone else refuses the connection.
func proxyListener(ln net.Listener, pp config.ProxyProtocol) (net.Listener, error) {
	if len(pp.TrustedCIDRs) == 0 {
		return ln, nil
	}
	policy, err := proxyproto.PolicyFromRanges(pp.TrustedCIDRs, proxyproto.USE, proxyproto.REJECT)
	if err != nil {
		return nil, fmt.Errorf("listen: server.proxy_protocol.trusted_cidrs: %w", err)
	}
	return &proxyproto.Listener{Listener: ln, ConnPolicy: policy, ReadHeaderTimeout: pp.HeaderTimeout}, nil
}

// listenHTTP3 opens the UDP socket on the TCP listener's port.
func (s *Server) listenHTTP3(addr net.Addr, cfg *config.Config) (*http3.Server, net.PacketConn, error) {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return nil, nil, fmt.Errorf("listen: server.http3: %w", err)
	}
	h3 := &http3.Server{
		Handler:        s.h,
		TLSConfig:      http3.ConfigureTLSConfig(s.base),
		MaxHeaderBytes: cfg.Server.HTTP2.MaxHeaderListBytes,
		IdleTimeout:    cfg.Server.IdleTimeout,
	}
	return h3, pc, nil
}

// altSvc advertises HTTP/3 on the TCP responses; the value is built once.
func altSvc(h http.Handler, addr net.Addr) http.Handler {
	_, port, _ := net.SplitHostPort(addr.String())
	v := []string{`h3=":` + port + `"; ma=` + strconv.Itoa(DefaultAltSvcMaxAge)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Alt-Svc"] = v
		h.ServeHTTP(w, r)
	})
}

// listenRedirect opens the plain listener that sends clients to HTTPS
// (ACME HTTP-01 challenges excepted).
func (s *Server) listenRedirect(addr string, tlsAddr net.Addr) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: server.redirect_listen: %w", err)
	}
	_, port, _ := net.SplitHostPort(tlsAddr.String())
	suffix := ""
	if port != "443" {
		suffix = ":" + port
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.acme != nil && s.acme.handleHTTP(w, r) {
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "edgecache: use HTTPS", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "https://"+host+suffix+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	return &http.Server{Handler: h, ReadHeaderTimeout: config.DefaultReadHeaderTimeout}, ln, nil
}
