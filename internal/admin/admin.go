package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/shardmap"
)

// Admin API defaults.
const (
	// TokenEnv is the environment variable that holds the admin
	// token; it overrides admin.token_file.
	TokenEnv = "EDGECACHE_ADMIN_TOKEN"
	// SessionTTL is how long a status-page session lasts.
	SessionTTL = 15 * time.Minute
	// MaxSessions bounds the sessions kept; a login past it ends the
	// session closest to its expiry.
	MaxSessions = 1024
	// LoginBurst is how many wrong tokens a client address may
	// present before it is held (a token bucket of this size).
	LoginBurst = 5
	// LoginInterval is how often a held address gets one more
	// attempt (the bucket's refill).
	LoginInterval = 20 * time.Second
	// adminLimitAddrs bounds the addresses the login limiter remembers.
	adminLimitAddrs = 4096
	// adminBodyLimit bounds a request body (a posted config).
	adminBodyLimit = 1 << 20
	sessionCookie  = "edgecache_admin"
)

// Token returns the admin API's bearer token: the value of
// EDGECACHE_ADMIN_TOKEN if set (getenv), else the first line of
// c.TokenFile if set, else a new random token (generated is true: print
// it once, it exists nowhere else).
func Token(c config.Admin, getenv func(string) string) (token string, generated bool, err error) {
	if t := strings.TrimSpace(getenv(TokenEnv)); t != "" {
		return t, false, nil
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", false, fmt.Errorf("admin: admin.token_file: %w", err)
		}
		t, _, _ := strings.Cut(string(b), "\n")
		if t = strings.TrimSpace(t); t == "" {
			return "", false, fmt.Errorf("admin: admin.token_file %s is empty", c.TokenFile)
		}
		return t, false, nil
	}
	return randomToken(), true, nil
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Admin is the admin API of a gateway, over its read-only view.
type Admin struct {
	v        gateway.View
	tokenSum [sha256.Size]byte
	sessions sessions
	limit    loginLimiter
	echo     *echo.Echo
	hist     *history // the status page's hit-ratio chart (history.go)
	stop     chan struct{}
	stopped  sync.WaitGroup
}

// New returns the admin API of v, whose endpoints require token (empty:
// a random one that nobody knows, so the admin API is closed). It starts
// sampling the hit ratio for the status page: Close stops it.
func New(v gateway.View, token string) *Admin {
	if token == "" {
		token = randomToken() // nobody knows it: the admin API is closed
	}
	a := &Admin{v: v, tokenSum: sha256.Sum256([]byte(token)), hist: newHistory(historySize), stop: make(chan struct{})}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = adminError
	bearer, page := a.auth(false), a.auth(true)
	e.GET("/metrics", echo.WrapHandler(v.Metrics().Handler()), bearer)
	e.GET("/admin/status", a.status, page)
	e.POST("/admin/purge", a.purge, bearer)
	e.POST("/admin/reload", a.reload, bearer)
	e.GET("/admin/shardmap/plan", a.plan, bearer)
	e.POST("/admin/shardmap/plan", a.plan, bearer)
	e.GET("/admin/", a.page, a.pageAuth)
	e.GET("/admin", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/admin/") })
	e.POST("/admin/login", a.login)
	e.POST("/admin/logout", a.logout)
	a.echo = e
	a.startSampler()
	return a
}

// Handler returns the admin API's handler, to serve on a listener apart
// from traffic (see Serve).
func (a *Admin) Handler() http.Handler { return a.echo }

// Serve serves the admin API on ln until ctx is done.
func (a *Admin) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(a.v.Logger().Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// adminError renders every error as JSON {"error": "..."}.
func adminError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
	}
	if code == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edgecache admin"`)
	}
	_ = c.JSON(code, map[string]string{"error": msg})
}

var errUnauthorized = echo.NewHTTPError(http.StatusUnauthorized, "admin token required: Authorization: Bearer TOKEN")

// errHeld is a refused attempt from an address that presented too many
// wrong tokens; Retry-After says when it may try again.
type errHeld struct{ retry time.Duration }

func (e *errHeld) Error() string { return "admin: too many wrong tokens from this address" }

// answer sets Retry-After (whole seconds, rounded up) and renders 429.
func (e *errHeld) answer(c echo.Context) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int((e.retry+time.Second-1)/time.Second)))
	return echo.NewHTTPError(http.StatusTooManyRequests, "too many wrong tokens from this address: try again later")
}

// checkToken checks a presented token (not "") against the admin token,
// counting the attempt against the client's address: nil, errUnauthorized,
// or an *errHeld while the address is held (the token is then not
// compared at all).
func (a *Admin) checkToken(r *http.Request, t string) error {
	now := time.Now()
	if retry := a.limit.take(r.RemoteAddr, now); retry > 0 {
		return &errHeld{retry: retry}
	}
	if !a.validToken(t) {
		return errUnauthorized
	}
	a.limit.refund(r.RemoteAddr, now)
	return nil
}

// validToken compares a presented token with the admin token in constant
// time, whatever their lengths.
func (a *Admin) validToken(t string) bool {
	sum := sha256.Sum256([]byte(t))
	return t != "" && subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// auth requires the bearer token; with cookie, a session cookie will do
// (GET endpoints only).
func (a *Admin) auth(cookie bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := a.authorize(c.Request(), cookie); err != nil {
				return adminDenied(c, err)
			}
			return next(c)
		}
	}
}

// adminDenied renders a refusal of authorize or checkToken.
func adminDenied(c echo.Context, err error) error {
	var h *errHeld
	if errors.As(err, &h) {
		return h.answer(c)
	}
	return err
}

// authorize lets r through with the bearer token or, with cookie, a live
// session (GET only); otherwise it returns errUnauthorized, or an *errHeld
// when a token came from an address held for too many wrong ones.
func (a *Admin) authorize(r *http.Request, cookie bool) error {
	var err error = errUnauthorized
	if t := bearer(r); t != "" {
		if err = a.checkToken(r, t); err == nil {
			return nil
		}
	}
	if cookie && r.Method == http.MethodGet {
		if ck, cerr := r.Cookie(sessionCookie); cerr == nil && a.sessions.valid(ck.Value, time.Now()) {
			return nil
		}
	}
	return err
}

// login exchanges the token (bearer header, or a "token" form field from
// the page's form) for a session cookie.
func (a *Admin) login(c echo.Context) error {
	r := c.Request()
	t := bearer(r)
	form := t == ""
	if form {
		t = r.PostFormValue("token")
	}
	var err error = errUnauthorized
	if t != "" {
		err = a.checkToken(r, t)
	}
	if err != nil {
		if !form {
			return adminDenied(c, err)
		}
		var h *errHeld
		if errors.As(err, &h) {
			_ = h.answer(c) // the Retry-After header
			return a.render(c, http.StatusTooManyRequests, "login.html", map[string]string{"Message": "Too many wrong tokens from this address: try again later."})
		}
		return a.loginPage(c, "That token is not the admin token.")
	}
	now := time.Now()
	exp := now.Add(SessionTTL)
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: a.sessions.start(now), Path: "/admin", Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	if form {
		return c.Redirect(http.StatusSeeOther, "/admin/")
	}
	return c.NoContent(http.StatusNoContent)
}

// logout ends the session of the cookie it is sent with, on the server
// (the cookie is then worthless), and clears the cookie.
func (a *Admin) logout(c echo.Context) error {
	if ck, err := c.Request().Cookie(sessionCookie); err == nil {
		a.sessions.end(ck.Value)
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return c.Redirect(http.StatusSeeOther, "/admin/")
}

// pageAuth lets the status page through with the token or a session;
// otherwise it answers 401 with the login page.
func (a *Admin) pageAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := a.authorize(c.Request(), true)
		if err == nil {
			return next(c)
		}
		var h *errHeld
		if errors.As(err, &h) {
			return h.answer(c)
		}
		return a.loginPage(c, "")
	}
}

func (a *Admin) status(c echo.Context) error {
	return c.JSON(http.StatusOK, a.Status())
}

func (a *Admin) purge(c echo.Context) error {
	var req gateway.PurgeRequest
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, adminBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "want a JSON body {\"key\"|\"url\"|\"tag\": \"...\", \"soft\": false}: "+err.Error())
	}
	res, err := a.v.Purge(c.Request().Context(), req)
	switch {
	case errors.Is(err, gateway.ErrBadPurge):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case err != nil:
		return echo.NewHTTPError(http.StatusBadGateway, err.Error())
	}
	what, name := "key", req.Key
	if req.URL != "" {
		what, name = "url", req.URL
	} else if req.Tag != "" {
		what, name = "tag", req.Tag
	}
	a.v.Logger().InfoContext(c.Request().Context(), "admin purge", what, name, "soft", req.Soft, "keys", res.Keys)
	return c.JSON(http.StatusOK, res)
}

// reloadResult is the answer of POST /admin/reload.
type reloadResult struct {
	Generation uint64 `json:"generation"`
	Source     string `json:"source"`
	Error      string `json:"error,omitempty"`
}

func (a *Admin) reload(c echo.Context) error {
	a.v.Logger().InfoContext(c.Request().Context(), "reloading configuration", "trigger", "admin")
	err := a.v.ReloadSource()
	gen := a.v.Generation()
	res := reloadResult{Generation: gen.ID, Source: gen.Source}
	if err != nil {
		res.Error = err.Error()
		return c.JSON(http.StatusUnprocessableEntity, res)
	}
	return c.JSON(http.StatusOK, res)
}

// planResult is the answer of /admin/shardmap/plan.
type planResult struct {
	shardmap.PlanResult
	From  string  `json:"from"`
	To    string  `json:"to"`
	Moves float64 `json:"moves"` // fraction of the key space that changes owner
}

// plan compares the serving shard map with the map of a posted config
// (POST, or GET with a body), or of the config source as it reads now
// (GET without a body: what a reload would do).
func (a *Admin) plan(c echo.Context) error {
	gen := a.v.Generation()
	if gen.Shards() == nil {
		return echo.NewHTTPError(http.StatusConflict, "no shard map: the embedded store is in use")
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, adminBodyLimit+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	if len(body) > adminBodyLimit {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "config larger than 1 MiB")
	}
	var shards []config.Shard
	to := "posted config"
	if len(strings.TrimSpace(string(body))) == 0 {
		if c.Request().Method == http.MethodPost {
			return echo.NewHTTPError(http.StatusBadRequest, "post a config (YAML) with a shards section")
		}
		src := a.v.Source()
		cfg, err := src.Load()
		if err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
		shards, to = cfg.Shards, src.String()
	} else if shards, err = config.ParseShards(body); err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	if len(shards) == 0 {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "the new config has no shards: the embedded store has no shard map")
	}
	members := make([]shardmap.Member, len(shards))
	for i, s := range shards {
		members[i] = shardmap.Member{Name: s.Name, Weight: s.Weight}
	}
	next, err := shardmap.New(members)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	p := shardmap.Plan(gen.Shards().Map(), next)
	return c.JSON(http.StatusOK, planResult{PlanResult: p, From: fmt.Sprintf("generation %d", gen.ID), To: to, Moves: p.MovedFraction()})
}

// sessions are the status page's live sessions: a cookie value is a
// random id, kept (as its SHA-256, so that a lookup's timing says nothing
// of the ids) with its expiry until it expires or logs out.
type sessions struct {
	mu   sync.Mutex
	live map[[sha256.Size]byte]time.Time
}

// start opens a session lasting SessionTTL and returns its cookie
// value. Expired sessions are dropped; past MaxSessions, the one
// closest to its expiry ends.
func (s *sessions) start(now time.Time) string {
	v := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = make(map[[sha256.Size]byte]time.Time)
	}
	for id, exp := range s.live {
		if !now.Before(exp) {
			delete(s.live, id)
		}
	}
	if len(s.live) >= MaxSessions {
		var first [sha256.Size]byte
		var firstExp time.Time
		for id, exp := range s.live {
			if firstExp.IsZero() || exp.Before(firstExp) {
				first, firstExp = id, exp
			}
		}
		delete(s.live, first)
	}
	s.live[sha256.Sum256([]byte(v))] = now.Add(SessionTTL)
	return v
}

// valid reports whether v is the cookie of a live session.
func (s *sessions) valid(v string, now time.Time) bool {
	id := sha256.Sum256([]byte(v))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.live[id]
	return ok && now.Before(exp)
}

// end ends the session of cookie value v, if it is one.
func (s *sessions) end(v string) {
	id := sha256.Sum256([]byte(v))
	s.mu.Lock()
	delete(s.live, id)
	s.mu.Unlock()
}

// loginLimiter holds client addresses to LoginBurst wrong tokens,
// then one attempt per LoginInterval: a token bucket per address
// (per /64 for IPv6, which a single client commonly holds whole). An
// attempt takes a token before the comparison, so concurrent guesses
// cannot overdraw it, and a right token gives it back.
type loginLimiter struct {
	mu      sync.Mutex
	buckets map[netip.Prefix]*loginBucket
}

type loginBucket struct {
	tokens float64 // attempts left, refilled at one per LoginInterval
	at     time.Time
}

// limitKey is the address a limit applies to: the IP of remote
// (host:port), its /64 for IPv6.
func limitKey(remote string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{} // not an IP (a test's pipe): one shared bucket
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// refill brings b up to now.
func (b *loginBucket) refill(now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(LoginBurst, b.tokens+float64(el)/float64(LoginInterval))
	}
	b.at = now
}

// take takes an attempt for remote's address; it returns 0, or how long
// the address must wait for its next attempt.
func (l *loginLimiter) take(remote string, now time.Time) time.Duration {
	key := limitKey(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if l.buckets == nil {
			l.buckets = make(map[netip.Prefix]*loginBucket)
		}
		l.sweep(now)
		b = &loginBucket{tokens: LoginBurst, at: now}
		l.buckets[key] = b
	}
	b.refill(now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(LoginInterval))
	}
	b.tokens--
	return 0
}

// refund gives back the attempt of a right token.
func (l *loginLimiter) refund(remote string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[limitKey(remote)]; b != nil {
		b.refill(now)
		b.tokens = min(LoginBurst, b.tokens+1)
	}
}

// sweep makes room for one more address: it forgets the addresses whose
// buckets are full again (they lose nothing), and past adminLimitAddrs
// still, any one (an attacker with that many addresses gains little from
// a reset of one of them). l.mu is held.
func (l *loginLimiter) sweep(now time.Time) {
	if len(l.buckets) < adminLimitAddrs {
		return
	}
	for k, b := range l.buckets {
		if b.refill(now); b.tokens >= LoginBurst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < adminLimitAddrs {
			break
		}
		delete(l.buckets, k)
	}
}
