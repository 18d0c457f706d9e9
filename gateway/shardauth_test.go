package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// Secrets of the shard tests: none of them may show up in a log, the
// admin status, the metrics or a reload error.
const (
	adminPass = "admin-Secret-4d1f"
	gwPass    = "gw-Secret-93ab"
	gwPass2   = "gw-Secret-rotated-77c2"
	sentPass  = "sentinel-Secret-e01c"
)

// gwUser is the ACL rules of the gateway's user: every key and channel,
// every command.
var gwUser = []string{"~*", "&*", "+@all"}

// writeSecret writes a password file (atomically: a rename, as a
// Kubernetes Secret update is) and returns its path.
func writeSecret(t *testing.T, path, content string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsShard is a standalone shard over TLS with the CA file, as user gw
// with the password in file.
func tlsShard(addr, caFile, user, file string) config.Shard {
	return config.Shard{Name: "s0", Addr: addr, Weight: 1, TLS: &config.TLS{CAFile: caFile}, Username: user, PasswordFile: file}
}

func mustValid(t *testing.T, cfg *config.Config) *config.Config {
	t.Helper()
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// adminGet answers an admin API GET with the test token.
func adminGet(t *testing.T, g *gateway.Gateway, path string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	adminHandler(t, g).ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.String()
}

// noSecrets fails if any secret appears in what.
func noSecrets(t *testing.T, where, what string) {
	t.Helper()
	for _, s := range []string{adminPass, gwPass, gwPass2, sentPass} {
		if strings.Contains(what, s) {
			t.Errorf("%s contains a secret (%q)", where, s)
		}
	}
}

// gatewayClients returns CLIENT LIST's lines of the connections that are
// not the test's own (user default), by id.
func gatewayClients(t *testing.T, s *valkeytest.Server) map[string]string {
	t.Helper()
	list, err := s.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(list) {
		f := clientFields(line)
		if f["user"] != "default" && f["id"] != "" {
			out[f["id"]] = f["user"]
		}
	}
	return out
}

func clientFields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestTLSACLShard runs two gateways against a TLS-only shard that only an
// ACL user can use: miss, L2 hit, L1 hit, and an invalidation that
// reaches both L1s.
func TestTLSACLShard(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass), valkeytest.WithUser("gw", gwPass, gwUser...))[0]
	pwFile := writeSecret(t, filepath.Join(t.TempDir(), "password"), gwPass+"\n")
	origin := newTestOrigin(t)
	var logs syncBuffer
	newGW := func() (*gateway.Gateway, string) {
		cfg := testConfig(origin.URL, nil)
		cfg.Shards = []config.Shard{tlsShard(srv.Addr, ca.CAFile, "gw", pwFile)}
		return startGatewayWith(t, mustValid(t, cfg), gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	}
	g1, base1 := newGW()
	g2, base2 := newGW()

	// Both gateways name the entry alike: the requests carry one Host.
	host := strings.TrimPrefix(base1, "http://")
	as := func(method, base string) result {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/tls/1", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, body: string(b), cacheStatus: resp.Header.Get("Cache-Status")}
	}
	wantStatus(t, as(http.MethodGet, base1), 200, stored)
	wantStatus(t, as(http.MethodGet, base1), 200, hitL2)
	wantL1(t, func() result { return as(http.MethodGet, base1) })
	// Gateway 2's first lookup of the key is untracked (valkey.l1_min_uses
	// 2): an L2 hit; its second is tracked, its third from the L1.
	wantStatus(t, as(http.MethodGet, base2), 200, hitL2)
	wantStatus(t, as(http.MethodGet, base2), 200, hitL2)
	wantL1(t, func() result { return as(http.MethodGet, base2) })
	if n := origin.Count("/tls/1"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	// A write through gateway 2 invalidates the entry; tracking, over
	// TLS, drops it from both gateways' L1.
	if r := as(http.MethodPut, base2); r.status != 200 {
		t.Fatalf("PUT: %d", r.status)
	}
	for _, base := range []string{base1, base2} {
		waitFor(t, "L1 invalidated on "+base, func() (bool, string) {
			r := as(http.MethodGet, base)
			return r.cacheStatus != hitL1, r.cacheStatus
		})
	}
	if n := origin.Count("/tls/1"); n < 3 { // the PUT, and the GET after it
		t.Fatalf("origin saw %d requests after the invalidation, want at least 3", n)
	}
	users := gatewayClients(t, srv)
	if len(users) == 0 {
		t.Fatal("no gateway connection in CLIENT LIST")
	}
	for id, u := range users {
		if u != "gw" {
			t.Fatalf("connection %s is user %q, want gw", id, u)
		}
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(adminGet(t, g1, "/admin/status")), &st); err != nil {
		t.Fatal(err)
	}
	if s := st.Shards[0]; !s.TLS || !s.L1 || !s.Healthy || s.Error != "" {
		t.Fatalf("status %+v, want tls, l1, healthy", s)
	}
	for name, text := range map[string]string{
		"status": adminGet(t, g1, "/admin/status"), "metrics": adminGet(t, g2, "/metrics"), "logs": logs.String(),
	} {
		noSecrets(t, name, text)
	}
}

// TestShardAuthFailures: a wrong password or a wrong CA fails a reload
// clearly while the old generation serves; at startup the shard fails
// open with the reason in the admin status. No secret is shown anywhere.
func TestShardAuthFailures(t *testing.T) {
	ca := valkeytest.NewCA(t)
	otherCA := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass), valkeytest.WithUser("gw", gwPass, gwUser...))[0]
	dir := t.TempDir()
	good := writeSecret(t, filepath.Join(dir, "good"), gwPass)
	wrong := writeSecret(t, filepath.Join(dir, "wrong"), gwPass2)
	origin := newTestOrigin(t)

	doc := func(caFile, pwFile string) string {
		return shardYAML(origin.URL) + fmt.Sprintf("shards:\n  - name: s0\n    addr: %q\n    username: gw\n    password_file: %q\n    tls: { ca_file: %q }\n", srv.Addr, pwFile, caFile)
	}

	t.Run("startup", func(t *testing.T) {
		for _, tc := range []struct{ name, caFile, pwFile, want string }{
			{"wrong password", ca.CAFile, wrong, "WRONGPASS"},
			{"wrong CA", otherCA.CAFile, good, "certificate signed by unknown authority"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var logs syncBuffer
				path := filepath.Join(t.TempDir(), "edgecache.yaml")
				if err := os.WriteFile(path, []byte(doc(tc.caFile, tc.pwFile)), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg, err := config.Source{File: path}.Load()
				if err != nil {
					t.Fatal(err)
				}
				g, base := startGatewayWith(t, cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				// Fails open: the origin answers.
				if r := get(t, base+"/start/"+tc.name); r.status != 200 {
					t.Fatalf("status %d with the shard failing", r.status)
				}
				body := adminGet(t, g, "/admin/status")
				var st admin.Status
				if err := json.Unmarshal([]byte(body), &st); err != nil {
					t.Fatal(err)
				}
				s := st.Shards[0]
				if s.Connected || s.Healthy || !strings.Contains(s.Error, tc.want) {
					t.Fatalf("status %+v, want not connected with an error naming %q", s, tc.want)
				}
				t.Logf("admin status error: %s", s.Error)
				noSecrets(t, "status", body)
				noSecrets(t, "metrics", adminGet(t, g, "/metrics"))
				noSecrets(t, "logs", logs.String())
			})
		}
	})

	t.Run("reload", func(t *testing.T) {
		g, base, path := fileGateway(t, doc(ca.CAFile, good))
		wantStatus(t, get(t, base+"/r"), 200, stored)
		wantStatus(t, get(t, base+"/r"), 200, hitL2)
		wantL1(t, func() result { return get(t, base+"/r") }) // after its own fill (wantL1); below the L1 must hold it
		gen := g.Generation().ID
		for _, tc := range []struct{ name, caFile, pwFile, want string }{
			{"wrong password", ca.CAFile, wrong, "WRONGPASS"},
			{"wrong CA", otherCA.CAFile, good, "certificate signed by unknown authority"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				writeAndWait(t, g, path, doc(tc.caFile, tc.pwFile), true)
				_, err := g.LastReloadError()
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "shards[0]") {
					t.Fatalf("reload error %q, want shards[0] and %q", err, tc.want)
				}
				t.Logf("reload error: %v", err)
				noSecrets(t, "reload error", err.Error())
				if g.Generation().ID != gen {
					t.Fatal("the broken config replaced the serving generation")
				}
				wantStatus(t, get(t, base+"/r"), 200, hitL1) // the old generation serves, its L1 too
				// Back to the good config before the next case.
				writeAndWait(t, g, path, doc(ca.CAFile, good)+"# "+tc.name+"\n", false)
				gen = g.Generation().ID
			})
		}
	})
}

// TestWrongPasswordInFile: a rotation to a password the server refuses
// takes the shard out (fail open, the reason in the status) until the file
// is fixed; then it serves again, with no restart.
func TestWrongPasswordInFile(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass), valkeytest.WithUser("gw", gwPass, gwUser...))[0]
	pwFile := writeSecret(t, filepath.Join(t.TempDir(), "password"), gwPass)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{tlsShard(srv.Addr, ca.CAFile, "gw", pwFile)}
	cfg.Valkey.AuthRefreshInterval = 100 * time.Millisecond
	g, base := startGatewayWith(t, mustValid(t, cfg), gateway.Options{})
	wantStatus(t, get(t, base+"/w"), 200, stored)
	writeSecret(t, pwFile, gwPass2)
	shard := func() admin.ShardStatus {
		var st admin.Status
		if err := json.Unmarshal([]byte(adminGet(t, g, "/admin/status")), &st); err != nil {
			t.Fatal(err)
		}
		return st.Shards[0]
	}
	waitForLong(t, "the shard fails with WRONGPASS", 10*time.Second, func() (bool, string) {
		if r := get(t, base+"/w"); r.status != 200 {
			t.Fatalf("status %d while the shard fails", r.status)
		}
		s := shard()
		return !s.Healthy && strings.Contains(s.Error, "WRONGPASS"), fmt.Sprintf("%+v", s)
	})
	noSecrets(t, "status", adminGet(t, g, "/admin/status"))
	writeSecret(t, pwFile, gwPass)
	waitForLong(t, "the shard serves again", 15*time.Second, func() (bool, string) {
		r := get(t, base+"/w")
		return r.cacheStatus == hitL1 || r.cacheStatus == hitL2, r.cacheStatus
	})
}

// TestPasswordRotationUnderLoad rotates the shard's credentials to a new
// ACL user under load: the file changes, every live connection
// re-authenticates as the new user (same connection ids), the old user is
// deleted on the server, and no request fails.
func TestPasswordRotationUnderLoad(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass), valkeytest.WithUser("gw1", gwPass, gwUser...))[0]
	secret := filepath.Join(t.TempDir(), "credentials.json")
	writeSecret(t, secret, `{"username": "gw1", "password": "`+gwPass+`"}`)
	origin := newTestOrigin(t)
	var logs syncBuffer
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{tlsShard(srv.Addr, ca.CAFile, "", secret)}
	cfg.Valkey.AuthRefreshInterval = 200 * time.Millisecond
	g, base := startGatewayWith(t, mustValid(t, cfg), gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	const keys = 50
	for i := range keys {
		get(t, base+"/k/"+strconv.Itoa(i))
	}
	stop := make(chan struct{})
	l := startLoad(t, base, 4, keys, stop)
	time.Sleep(time.Second)
	before := gatewayClients(t, srv)
	if len(before) == 0 {
		t.Fatal("no gateway connection")
	}
	for id, u := range before {
		if u != "gw1" {
			t.Fatalf("connection %s is %q before the rotation", id, u)
		}
	}
	// The operator's rotation: a new user on the server, then the secret.
	if _, err := srv.Do(append([]string{"ACL", "SETUSER", "gw2", "on", ">" + gwPass2}, gwUser...)...); err != nil {
		t.Fatal(err)
	}
	writeSecret(t, secret, `{"username": "gw2", "password": "`+gwPass2+`"}`)
	waitForLong(t, "every connection re-authenticated as gw2", 10*time.Second, func() (bool, string) {
		now := gatewayClients(t, srv)
		for id := range before {
			if now[id] != "gw2" {
				return false, fmt.Sprintf("connection %s is %q", id, now[id])
			}
		}
		return true, ""
	})
	// The old user goes: a connection still on it would be killed.
	if _, err := srv.Do("ACL", "DELUSER", "gw1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	close(stop)
	l.wg.Wait()
	after := gatewayClients(t, srv)
	t.Logf("rotation under load: %d requests ok, %d failed; connections before %v, after %v", l.ok.Load(), l.failed.Load(), before, after)
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", l.failed.Load(), l.firstErr)
	}
	for id := range before {
		if after[id] != "gw2" {
			t.Fatalf("connection %s was not kept across the rotation (now %v)", id, after)
		}
	}
	// The cache still works through the new user: store, then hit.
	wantStatus(t, get(t, base+"/after"), 200, stored)
	wantStatus(t, get(t, base+"/after"), 200, hitL2)
	if s := g.Generation().Shards().Shards()[0]; !s.Healthy() {
		t.Fatalf("shard unhealthy after the rotation: %s", s.Err())
	}
	noSecrets(t, "logs", logs.String())
	noSecrets(t, "status", adminGet(t, g, "/admin/status"))
}

// TestShardWithoutTracking: a user that may not run CLIENT TRACKING (as
// on Upstash or behind some proxies) gets a shard served through L2 only,
// and the status, a metric and a log line say so.
func TestShardWithoutTracking(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass),
		valkeytest.WithUser("gw", gwPass, append(slices.Clone(gwUser), "-client|tracking")...))[0]
	pwFile := writeSecret(t, filepath.Join(t.TempDir(), "password"), gwPass)
	origin := newTestOrigin(t)
	var logs syncBuffer
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{tlsShard(srv.Addr, ca.CAFile, "gw", pwFile)}
	g, base := startGatewayWith(t, mustValid(t, cfg), gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	wantStatus(t, get(t, base+"/n"), 200, stored)
	for range 3 {
		wantStatus(t, get(t, base+"/n"), 200, hitL2) // never L1
	}
	if n := origin.Count("/n"); n != 1 {
		t.Fatalf("origin saw %d", n)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(adminGet(t, g, "/admin/status")), &st); err != nil {
		t.Fatal(err)
	}
	if s := st.Shards[0]; s.L1 || !strings.Contains(s.L1Off, "TRACKING") || !s.Healthy {
		t.Fatalf("status %+v, want healthy with L1 off for CLIENT TRACKING", s)
	}
	t.Logf("l1_off: %s", st.Shards[0].L1Off)
	if !strings.Contains(adminGet(t, g, "/metrics"), `edgecache_shard_l1_enabled{shard="s0"} 0`) {
		t.Fatal("metric edgecache_shard_l1_enabled is not 0 for the shard")
	}
	if !strings.Contains(logs.String(), "without L1") {
		t.Fatalf("no log line says the shard runs without L1:\n%s", logs.String())
	}
}

// TestSentinelTLSAuthFailover: a Sentinel shard where the data nodes and
// the sentinels each want TLS and their own password fails over under
// load with no failed request.
func TestSentinelTLSAuthFailover(t *testing.T) {
	ca := valkeytest.NewCA(t)
	grp := valkeytest.StartSentinel(t, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass),
		valkeytest.WithSentinelPassword(sentPass), valkeytest.WithUser("gw", gwPass, gwUser...))
	dir := t.TempDir()
	pwFile := writeSecret(t, filepath.Join(dir, "password"), gwPass)
	sentFile := writeSecret(t, filepath.Join(dir, "sentinel-password"), sentPass)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{
		Name: "ha", Weight: 1, TLS: &config.TLS{CAFile: ca.CAFile}, Username: "gw", PasswordFile: pwFile,
		Sentinel: &config.Sentinel{Master: grp.MasterName, Addrs: grp.SentinelAddrs(), PasswordFile: sentFile},
	}}
	_, base := startGateway(t, mustValid(t, cfg))
	failoverUnderLoad(t, base, origin, func() {
		t.Logf("killing primary %s", grp.Primary.Addr)
		grp.Primary.Kill()
	})
	if addr, err := grp.MasterAddr(); err != nil || addr != grp.Replica.Addr {
		t.Fatalf("sentinels name %q (%v) as primary, want the replica %s", addr, err, grp.Replica.Addr)
	}
}

// TestClusterTLSFailover: a Cluster over TLS with an ACL user loses a
// primary under load with no failed request.
func TestClusterTLSFailover(t *testing.T) {
	ca := valkeytest.NewCA(t)
	opts := []valkeytest.Option{valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass), valkeytest.WithUser("gw", gwPass, gwUser...)}
	c := valkeytest.StartCluster(t, 3, opts...)
	c.AddReplicas(t, opts...)
	pwFile := writeSecret(t, filepath.Join(t.TempDir(), "password"), gwPass)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "cluster", Cluster: c.Seeds(), Weight: 1, TLS: &config.TLS{CAFile: ca.CAFile}, Username: "gw", PasswordFile: pwFile}}
	_, base := startGateway(t, mustValid(t, cfg))
	victim := c.Owner(t, keyOf(t, base+"/k/7"))
	failoverUnderLoad(t, base, origin, func() {
		t.Logf("killing primary %s", victim.Addr)
		victim.Kill()
	})
	for i, n := range c.Nodes {
		if n == victim {
			info, _ := c.Replicas[i].Do("INFO", "replication")
			if !containsLine(info, "role:master") {
				t.Fatalf("replica of the killed primary was not promoted:\n%s", info)
			}
		}
	}
}

// TestInsecureSkipVerifyIsLogged: with verification off a shard with a
// certificate from an unknown CA is used, and a warning says so.
func TestInsecureSkipVerifyIsLogged(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca))[0]
	origin := newTestOrigin(t)
	var logs syncBuffer
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "s0", Addr: srv.Addr, Weight: 1, TLS: &config.TLS{InsecureSkipVerify: true}}}
	_, base := startGatewayWith(t, mustValid(t, cfg), gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	wantStatus(t, get(t, base+"/i"), 200, stored)
	wantStatus(t, get(t, base+"/i"), 200, hitL2)
	if !strings.Contains(logs.String(), "verification is OFF") || !strings.Contains(logs.String(), "shard=s0") {
		t.Fatalf("no warning about insecure_skip_verify:\n%s", logs.String())
	}
}

// TestMutualTLSAndPasswordCommand: a shard that requires a client
// certificate refuses a gateway without one (the reason in the status) and
// serves one with cert_file and key_file; the password comes from a
// command.
func TestMutualTLSAndPasswordCommand(t *testing.T) {
	ca := valkeytest.NewCA(t)
	srv := valkeytest.Start(t, 1, valkeytest.WithTLS(ca), valkeytest.WithPassword(adminPass),
		valkeytest.WithUser("gw", gwPass, gwUser...), valkeytest.WithArgs("--tls-auth-clients", "yes"))[0]
	pwFile := writeSecret(t, filepath.Join(t.TempDir(), "token"), gwPass)
	origin := newTestOrigin(t)
	for _, tc := range []struct {
		name       string
		cert, key  string
		wantServed bool
	}{
		{"no client certificate", "", "", false},
		{"client certificate", ca.ClientCertFile, ca.ClientKeyFile, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(origin.URL, nil)
			cfg.Shards = []config.Shard{{Name: "s0", Addr: srv.Addr, Weight: 1, Username: "gw", PasswordCommand: "cat " + pwFile,
				TLS: &config.TLS{CAFile: ca.CAFile, CertFile: tc.cert, KeyFile: tc.key}}}
			g, base := startGatewayWith(t, mustValid(t, cfg), gateway.Options{})
			path := "/mtls/" + strings.ReplaceAll(tc.name, " ", "-")
			wantStatus(t, get(t, base+path), 200, map[bool]string{true: stored, false: "edgecache; fwd=uri-miss; stored; detail=shard-unavailable"}[tc.wantServed])
			var st admin.Status
			if err := json.Unmarshal([]byte(adminGet(t, g, "/admin/status")), &st); err != nil {
				t.Fatal(err)
			}
			s := st.Shards[0]
			t.Logf("status: healthy %v, error %q", s.Healthy, s.Error)
			if s.Healthy != tc.wantServed || (!tc.wantServed && !strings.Contains(s.Error, "tls.cert_file")) {
				t.Fatalf("status %+v", s)
			}
			if tc.wantServed {
				wantStatus(t, get(t, base+path), 200, hitL2)
			}
		})
	}
}
