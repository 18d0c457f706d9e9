package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/shardmap"
)

// The admin API
//
// It listens apart from traffic (admin.listen, loopback by default) and
// every endpoint requires the bearer token:
//
//	GET  /admin/status          JSON: generation, config source, shards, plugins, last reload, hit ratio
//	POST /admin/purge           {"key"|"url"|"tag": "...", "soft": bool} → {"keys": n}
//	POST /admin/reload          re-read the config source → {"generation": n} or 422 {"error": ...}
//	GET  /admin/shardmap/plan   what reloading the config source would move
//	POST /admin/shardmap/plan   what the posted config (YAML) would move
//	GET  /metrics               Prometheus (scrape with authorization: credentials_file)
//	GET  /admin/                the status page (HTML)
//	POST /admin/login           exchange the token for a session cookie (the page's login)
//
// The token travels in "Authorization: Bearer TOKEN", is compared in
// constant time (as SHA-256 digests, so that its length does not leak
// either) and is never logged. A browser cannot send that header when it
// navigates, so the status page alone also accepts a session cookie: the
// page's login form (or, for a bookmark or a test, a token in the URL
// fragment, which browsers never send to the server) posts the token to
// /admin/login, which answers with an HttpOnly, SameSite=Strict cookie
// that names no token: an expiry and its HMAC under a key drawn at start.
// The cookie is accepted only by the GET endpoints, so a forged
// cross-site POST cannot purge or reload.

// Admin API defaults.
const (
	// AdminTokenEnv is the environment variable that holds the admin
	// token; it overrides admin.token_file.
	AdminTokenEnv = "EDGECACHE_ADMIN_TOKEN"
	// AdminSessionTTL is how long a status-page session lasts.
	AdminSessionTTL = 15 * time.Minute
	// adminBodyLimit bounds a request body (a posted config).
	adminBodyLimit = 1 << 20
	sessionCookie  = "edgecache_admin"
)

// AdminToken returns the admin API's bearer token: the value of
// EDGECACHE_ADMIN_TOKEN if set (getenv), else the first line of
// c.TokenFile if set, else a new random token (generated is true: print
// it once, it exists nowhere else).
func AdminToken(c config.Admin, getenv func(string) string) (token string, generated bool, err error) {
	if t := strings.TrimSpace(getenv(AdminTokenEnv)); t != "" {
		return t, false, nil
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", false, fmt.Errorf("gateway: admin.token_file: %w", err)
		}
		t, _, _ := strings.Cut(string(b), "\n")
		if t = strings.TrimSpace(t); t == "" {
			return "", false, fmt.Errorf("gateway: admin.token_file %s is empty", c.TokenFile)
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

// admin is the admin API of a gateway.
type admin struct {
	g          *Gateway
	tokenSum   [sha256.Size]byte
	sessionKey []byte
	echo       *echo.Echo
	started    time.Time
}

func newAdmin(g *Gateway, token string) *admin {
	if token == "" {
		token = randomToken() // nobody knows it: the admin API is closed
	}
	a := &admin{g: g, tokenSum: sha256.Sum256([]byte(token)), sessionKey: []byte(randomToken()), started: time.Now()}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = adminError
	bearer, page := a.auth(false), a.auth(true)
	e.GET("/metrics", echo.WrapHandler(g.obs.m.Handler()), bearer)
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
	return a
}

// AdminHandler returns the admin API's handler, to serve on a listener
// apart from traffic (see ServeAdmin).
func (g *Gateway) AdminHandler() http.Handler { return g.admin.echo }

// ServeAdmin serves the admin API on ln until ctx is done.
func (g *Gateway) ServeAdmin(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.admin.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
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

// validToken compares a presented token with the admin token in constant
// time, whatever their lengths.
func (a *admin) validToken(t string) bool {
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
func (a *admin) auth(cookie bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a.authorized(c.Request(), cookie) {
				return next(c)
			}
			return errUnauthorized
		}
	}
}

func (a *admin) authorized(r *http.Request, cookie bool) bool {
	if a.validToken(bearer(r)) {
		return true
	}
	if cookie && r.Method == http.MethodGet {
		if ck, err := r.Cookie(sessionCookie); err == nil && a.validSession(ck.Value, time.Now()) {
			return true
		}
	}
	return false
}

// session returns a cookie value valid until exp: exp and its HMAC.
func (a *admin) session(exp time.Time) string {
	var b [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(b[:8], uint64(exp.Unix()))
	mac := hmac.New(sha256.New, a.sessionKey)
	mac.Write(b[:8])
	mac.Sum(b[8:8])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *admin) validSession(v string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != 8+sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, a.sessionKey)
	mac.Write(b[:8])
	if !hmac.Equal(mac.Sum(nil), b[8:]) {
		return false
	}
	return now.Unix() < int64(binary.BigEndian.Uint64(b[:8]))
}

// login exchanges the token (bearer header, or a "token" form field from
// the page's form) for a session cookie.
func (a *admin) login(c echo.Context) error {
	r := c.Request()
	t := bearer(r)
	form := t == ""
	if form {
		t = r.PostFormValue("token")
	}
	if !a.validToken(t) {
		if form {
			return a.loginPage(c, "That token is not the admin token.")
		}
		return errUnauthorized
	}
	exp := time.Now().Add(AdminSessionTTL)
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: a.session(exp), Path: "/admin", Expires: exp, MaxAge: int(AdminSessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	if form {
		return c.Redirect(http.StatusSeeOther, "/admin/")
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *admin) logout(c echo.Context) error {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return c.Redirect(http.StatusSeeOther, "/admin/")
}

// pageAuth lets the status page through with the token or a session;
// otherwise it answers 401 with the login page.
func (a *admin) pageAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.authorized(c.Request(), true) {
			return next(c)
		}
		return a.loginPage(c, "")
	}
}

func (a *admin) status(c echo.Context) error {
	return c.JSON(http.StatusOK, a.g.Status())
}

func (a *admin) purge(c echo.Context) error {
	var req PurgeRequest
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, adminBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "want a JSON body {\"key\"|\"url\"|\"tag\": \"...\", \"soft\": false}: "+err.Error())
	}
	res, err := a.g.Purge(c.Request().Context(), req)
	switch {
	case errors.Is(err, ErrBadPurge):
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
	a.g.log.InfoContext(c.Request().Context(), "admin purge", what, name, "soft", req.Soft, "keys", res.Keys)
	return c.JSON(http.StatusOK, res)
}

// reloadResult is the answer of POST /admin/reload.
type reloadResult struct {
	Generation uint64 `json:"generation"`
	Source     string `json:"source"`
	Error      string `json:"error,omitempty"`
}

func (a *admin) reload(c echo.Context) error {
	a.g.log.InfoContext(c.Request().Context(), "reloading configuration", "trigger", "admin")
	err := a.g.ReloadSource()
	gen := a.g.gen.Load()
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
func (a *admin) plan(c echo.Context) error {
	gen := a.g.gen.Load()
	if gen.shards == nil {
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
		cfg, err := a.g.source.Load()
		if err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
		shards, to = cfg.Shards, a.g.source.String()
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
	p := shardmap.Plan(gen.shards.Map(), next)
	return c.JSON(http.StatusOK, planResult{PlanResult: p, From: fmt.Sprintf("generation %d", gen.ID), To: to, Moves: p.MovedFraction()})
}
