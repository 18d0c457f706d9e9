package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// adminDo sends a request to the admin API with the given token ("" for
// none) and returns the status and body.
func adminDo(t testing.TB, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	return testutil.Do(t, client, method, url, token, body)
}

// adminDoWith is adminDo through the given client (see clientFrom).
func adminDoWith(t testing.TB, client *http.Client, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	return testutil.Do(t, client, method, url, token, body)
}

// TestAdminRequiresToken calls every admin endpoint without a token, with
// a wrong one, and with the right one.
func TestAdminRequiresToken(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	var logs syncBuffer
	doc := shardYAML(origin.URL, "s0="+servers[0].Addr, "s1="+servers[1].Addr, "s2="+servers[2].Addr)
	_, base, api, _ := fileSourceGateway(t, doc, &logs)
	get(t, base+"/warm")

	endpoints := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/admin/status", "", 200},
		{"GET", "/metrics", "", 200},
		{"POST", "/admin/purge", `{"url": "` + base + `/warm"}`, 200},
		{"POST", "/admin/reload", "", 200},
		{"GET", "/admin/shardmap/plan", "", 200},
		{"POST", "/admin/shardmap/plan", shardYAML(origin.URL, "s0="+servers[0].Addr), 200},
		{"GET", "/admin/", "", 200},
	}
	for i, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			// Each endpoint from its own loopback address: failed tokens
			// are limited per address (TestAdminLoginRateLimit).
			from := clientFrom(t, fmt.Sprintf("127.0.0.%d", 10+i))
			for _, tc := range []struct {
				name, token string
				want        int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"wrong token", "not-" + testToken, http.StatusUnauthorized},
				{"prefix of the token", testToken[:10], http.StatusUnauthorized},
				{"token", testToken, ep.want},
			} {
				code, body, h := adminDoWith(t, from, ep.method, api+ep.path, tc.token, ep.body)
				if code != tc.want {
					t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
				}
				if code == http.StatusUnauthorized {
					if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.name)
					}
					if strings.Contains(body, "shard-") || strings.Contains(body, "edgecache_") || strings.Contains(body, `"generation"`) {
						t.Errorf("%s: 401 leaks data: %.200s", tc.name, body)
					}
				}
			}
		})
	}
	// Health checks are on the traffic listener, without a token.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := get(t, base+p); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %q", p, r.status, r.body)
		}
	}
	if strings.Contains(logs.String(), testToken) {
		t.Error("the admin token appears in the logs")
	}
}

func TestAdminStatus(t *testing.T) {
	servers := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	_, base, api, _ := fileSourceGateway(t, shardYAML(origin.URL, "s0="+servers[0].Addr, "s1="+servers[1].Addr+"*3"), nil)
	get(t, base+"/x")
	get(t, base+"/x")
	code, body, _ := adminDo(t, "GET", api+"/admin/status", testToken, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Generation != 1 || st.Store != "valkey" || !strings.HasSuffix(st.ConfigSource, "edgecache.yaml") || !st.LastReload.OK {
		t.Errorf("status %+v", st)
	}
	if len(st.Shards) != 2 || st.Shards[0].Name != "s0" || st.Shards[1].Weight != 3 || !st.Shards[0].Healthy || st.Shards[0].Kind != "standalone" {
		t.Fatalf("shards %+v", st.Shards)
	}
	if s := st.Shards[0].KeyShare + st.Shards[1].KeyShare; s < 0.999 || s > 1.001 || st.Shards[1].KeyShare < 0.7 {
		t.Errorf("key shares %v, %v", st.Shards[0].KeyShare, st.Shards[1].KeyShare)
	}
	if st.Requests["miss"] < 1 || st.Requests["miss"]+st.Requests["hit"] != 2 || st.Hits["l1"]+st.Hits["l2"] != st.Requests["hit"] {
		t.Errorf("requests %v, hits %v", st.Requests, st.Hits)
	}
	if len(st.Routes) != 1 || st.Routes[0].Origin != origin.URL || st.Plugins == nil || st.HitRatio == nil {
		t.Errorf("routes %+v, plugins %v, hit ratio %v", st.Routes, st.Plugins, st.HitRatio)
	}
}

func TestAdminReload(t *testing.T) {
	servers := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	g, _, api, file := fileSourceGateway(t, shardYAML(origin.URL, "s0="+servers[0].Addr), nil)

	write := func(doc string) {
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(shardYAML(origin.URL, "s0="+servers[0].Addr, "s1="+servers[1].Addr))
	code, body, _ := adminDo(t, "POST", api+"/admin/reload", testToken, "")
	if code != 200 || !strings.Contains(body, `"generation":2`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if n := len(g.Generation().Shards().Shards()); n != 2 {
		t.Fatalf("%d shards after reload", n)
	}
	write("routes: []\nshards: oops\n")
	code, body, _ = adminDo(t, "POST", api+"/admin/reload", testToken, "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"generation":2`) || !strings.Contains(body, `"error"`) {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	_, body, _ = adminDo(t, "GET", api+"/admin/status", testToken, "")
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastReload.OK || st.LastReload.Error == "" || st.LastReload.ErrorAt == nil || st.Generation != 2 {
		t.Errorf("status after a rejected reload: %+v", st.LastReload)
	}
}

func TestAdminShardmapPlan(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	three := shardYAML(origin.URL, "s0="+servers[0].Addr, "s1="+servers[1].Addr, "s2="+servers[2].Addr)
	_, _, api, file := fileSourceGateway(t, three, nil)

	type plan struct {
		Shards []struct {
			Name         string
			Weight       int
			NewWeight    int `json:"new_weight"`
			Lost, Gained int
		}
		Total, Moved int
		Moves        float64
		To           string
	}
	decode := func(body string) plan {
		var p plan
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return p
	}
	// GET: the source as it is now, unchanged: nothing moves.
	code, body, _ := adminDo(t, "GET", api+"/admin/shardmap/plan", testToken, "")
	if p := decode(body); code != 200 || p.Moved != 0 || p.Total != 65536 || p.To != file {
		t.Fatalf("%d %+v", code, p)
	}
	// POST a fourth shard: about a quarter of the key space moves, all to it.
	four := three + "  - { name: s3, addr: \"127.0.0.1:1\", weight: 1 }\n"
	code, body, _ = adminDo(t, "POST", api+"/admin/shardmap/plan", testToken, four)
	p := decode(body)
	if code != 200 || p.Moves < 0.2 || p.Moves > 0.3 || len(p.Shards) != 4 {
		t.Fatalf("%d %+v", code, p)
	}
	if s3 := p.Shards[3]; s3.Name != "s3" || s3.Weight != 0 || s3.NewWeight != 1 || s3.Gained != p.Moved {
		t.Errorf("new shard %+v, moved %d", s3, p.Moved)
	}
	// The file on disk changes: GET plans what a reload would do.
	if err := os.WriteFile(file, []byte(four), 0o600); err != nil {
		t.Fatal(err)
	}
	_, body, _ = adminDo(t, "GET", api+"/admin/shardmap/plan", testToken, "")
	if q := decode(body); q.Moved != p.Moved {
		t.Errorf("GET after the edit moves %d, POST of the same config %d", q.Moved, p.Moved)
	}
	// A shards-only document will do; a bad one is 422.
	code, _, _ = adminDo(t, "POST", api+"/admin/shardmap/plan", testToken, "shards:\n  - { name: s0, addr: \"127.0.0.1:7001\" }\n")
	if code != 200 {
		t.Errorf("shards-only config: %d", code)
	}
	code, body, _ = adminDo(t, "POST", api+"/admin/shardmap/plan", testToken, "shards:\n  - { name: s0, addr: nowhere }\n")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "shards[0].addr") {
		t.Errorf("bad config: %d %s", code, body)
	}
	code, _, _ = adminDo(t, "POST", api+"/admin/shardmap/plan", testToken, "")
	if code != http.StatusBadRequest {
		t.Errorf("empty POST: %d", code)
	}
}

// TestAdminSession checks the status page's login: the token buys a
// session cookie, the cookie opens the page and the status, and only
// those: a POST with the cookie alone is refused.
func TestAdminSession(t *testing.T) {
	servers := valkeytest.Start(t, 1)
	origin := newTestOrigin(t)
	_, _, api, _ := fileSourceGateway(t, shardYAML(origin.URL, "s0="+servers[0].Addr), nil)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}

	resp, err := browser.Get(api + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `name="token"`) || strings.Contains(string(b), "s0") {
		t.Fatalf("page without a session: %d %.300s", resp.StatusCode, b)
	}
	// The form, with a wrong token, then the right one.
	resp, err = browser.PostForm(api+"/admin/login", map[string][]string{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, err = browser.PostForm(api+"/admin/login", map[string][]string{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `data-shard="s0"`) {
		t.Fatalf("after login: %d %.300s", resp.StatusCode, b)
	}
	for _, c := range resp.Request.Response.Cookies() {
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, testToken) {
			t.Errorf("session cookie %+v", c)
		}
	}
	resp, err = browser.Get(api + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status with the session: %d", resp.StatusCode)
	}
	for _, p := range []string{"/admin/reload", "/admin/purge"} {
		resp, err = browser.Post(api+p, "application/json", strings.NewReader(`{"tag": "x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s with the session cookie only: %d, want 401", p, resp.StatusCode)
		}
	}
	resp, err = browser.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metrics with the session cookie: %d, want 401", resp.StatusCode)
	}
}

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == admin.TokenEnv {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name      string
		c         config.Admin
		env       string
		want      string
		generated bool
		err       bool
	}{
		{"env wins", config.Admin{TokenFile: file}, "from-env", "from-env", false, false},
		{"file", config.Admin{TokenFile: file}, "", "from-file", false, false},
		{"empty file", config.Admin{TokenFile: empty}, "", "", false, true},
		{"missing file", config.Admin{TokenFile: filepath.Join(dir, "nope")}, "", "", false, true},
		{"generated", config.Admin{}, "", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gen, err := admin.Token(tc.c, env(tc.env))
			if (err != nil) != tc.err || gen != tc.generated {
				t.Fatalf("%q %v %v", got, gen, err)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("token %q, want %q", got, tc.want)
			}
			if tc.generated && len(got) < 32 {
				t.Errorf("generated token %q is short", got)
			}
		})
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all loopback on Linux): a client address of
// its own for the admin API's per-address limits.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// adminCookie sends a request with the session cookie value v (and no
// token) and returns the status.
func adminCookie(t *testing.T, method, url, v string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.AddCookie(&http.Cookie{Name: "edgecache_admin", Value: v})
	resp, err := clientFrom(t, "127.0.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// adminLogin exchanges the token for a session cookie value.
func adminLogin(t *testing.T, api string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, api+"/admin/login", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "edgecache_admin" && resp.StatusCode == http.StatusNoContent {
			return c.Value
		}
	}
	t.Fatalf("login: %d without a session cookie", resp.StatusCode)
	return ""
}

// TestAdminLogoutRevokesSession: logging out ends the session on the
// server, so the cookie replayed afterwards (copied, or kept by a browser
// that ignored the expiry) opens nothing; other sessions go on (issue 12,
// finding 8: the cookie stayed valid for its 15 minutes).
func TestAdminLogoutRevokesSession(t *testing.T) {
	origin := newTestOrigin(t)
	_, _, api, _ := fileSourceGateway(t, shardYAML(origin.URL), nil)
	mine, other := adminLogin(t, api), adminLogin(t, api)
	if mine == other {
		t.Fatal("two logins got the same session")
	}
	for _, v := range []string{mine, other} {
		if code := adminCookie(t, "GET", api+"/admin/status", v); code != 200 {
			t.Fatalf("status with a fresh session: %d", code)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, api+"/admin/logout", nil)
	req.AddCookie(&http.Cookie{Name: "edgecache_admin", Value: mine})
	resp, err := clientFrom(t, "127.0.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || c.Name == "edgecache_admin" && c.MaxAge < 0
	}
	if resp.StatusCode != http.StatusSeeOther || !cleared {
		t.Fatalf("logout: %d, cookie cleared %v", resp.StatusCode, cleared)
	}
	for _, p := range []string{"/admin/status", "/admin/"} {
		if code := adminCookie(t, "GET", api+p, mine); code != http.StatusUnauthorized {
			t.Errorf("GET %s with the session after its logout: %d, want 401", p, code)
		}
		if code := adminCookie(t, "GET", api+p, other); code != 200 {
			t.Errorf("GET %s with another session: %d, want 200", p, code)
		}
	}
	// A cookie that was never issued, and a forged one, open nothing either.
	for _, v := range []string{"", "x", strings.Repeat("A", 43), other + "A"} {
		if code := adminCookie(t, "GET", api+"/admin/status", v); code != http.StatusUnauthorized {
			t.Errorf("session %q: %d, want 401", v, code)
		}
	}
}

// TestAdminLoginRateLimit: an address that presents wrong tokens is held
// to admin.LoginBurst failures, then answered 429 with Retry-After
// (even for the right token: a guess must not be confirmed), on the login
// form, the bearer login and every endpoint; other addresses are not
// affected (issue 12, finding 8: no limit at all).
func TestAdminLoginRateLimit(t *testing.T) {
	origin := newTestOrigin(t)
	_, _, api, _ := fileSourceGateway(t, shardYAML(origin.URL), nil)
	form := func(c *http.Client, token string) (int, http.Header) {
		resp, err := c.PostForm(api+"/admin/login", map[string][]string{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	bearerLogin := func(c *http.Client, token string) (int, http.Header) {
		code, _, h := adminDoWith(t, c, "POST", api+"/admin/login", token, "")
		return code, h
	}
	status := func(c *http.Client, token string) (int, http.Header) {
		code, _, h := adminDoWith(t, c, "GET", api+"/admin/status", token, "")
		return code, h
	}
	for i, tc := range []struct {
		name string
		try  func(c *http.Client, token string) (int, http.Header)
		ok   int
	}{
		{"login form", form, http.StatusSeeOther},
		{"bearer login", bearerLogin, http.StatusNoContent},
		{"bearer on an endpoint", status, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attacker := clientFrom(t, fmt.Sprintf("127.0.0.%d", 20+2*i))
			bystander := clientFrom(t, fmt.Sprintf("127.0.0.%d", 21+2*i))
			for n := range admin.LoginBurst {
				if code, _ := tc.try(attacker, fmt.Sprintf("guess-%d", n)); code != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d, want 401", n+1, code)
				}
			}
			for _, token := range []string{"guess-again", testToken} {
				code, h := tc.try(attacker, token)
				secs, err := strconv.Atoi(h.Get("Retry-After"))
				if code != http.StatusTooManyRequests || err != nil || secs < 1 || secs > int(admin.LoginInterval/time.Second) {
					t.Fatalf("after %d failures, token %q: %d Retry-After %q, want 429 and 1..%v", admin.LoginBurst, token, code, h.Get("Retry-After"), admin.LoginInterval)
				}
			}
			if code, _ := tc.try(bystander, testToken); code != tc.ok {
				t.Errorf("another address with the token: %d, want %d", code, tc.ok)
			}
			if code, _ := tc.try(bystander, "wrong"); code != http.StatusUnauthorized {
				t.Errorf("another address with a wrong token: %d, want 401", code)
			}
		})
	}
}
