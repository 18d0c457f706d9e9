package valkeytest

import (
	"bufio"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestServers(t *testing.T) {
	servers := Start(t, 3)
	ports := map[int]bool{}
	for i, s := range servers {
		if ports[s.Port] || s.Addr != "127.0.0.1:"+strconv.Itoa(s.Port) {
			t.Fatalf("server %d: Addr %q Port %d", i, s.Addr, s.Port)
		}
		ports[s.Port] = true
		val := fmt.Sprintf("v%d\r\n\x00$-1\r\n*2", i) // binary-safe
		if r, err := s.Do("SET", "k", val, "PX", "60000"); err != nil || r != "OK" {
			t.Fatalf("server %d: SET = %q, %v", i, r, err)
		}
		if r, err := s.Do("GET", "k"); err != nil || r != val {
			t.Fatalf("server %d: GET = %q, %v; want %q", i, r, err, val)
		}
	}
	s := servers[0]
	for _, tt := range []struct {
		name string
		args []string
		want string
		err  error
	}{
		{"missing key", []string{"GET", "nope"}, "", ErrNil},
		{"integer", []string{"DBSIZE"}, "1", nil},
		{"array", []string{"MGET", "k", "nope", "k"}, servers[0].mustGet(t, "k") + "\n\n" + servers[0].mustGet(t, "k"), nil},
		{"error", []string{"INCR", "k"}, "", ReplyError("ERR value is not an integer or out of range")},
		{"empty", []string{"ECHO", ""}, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Do(tt.args...)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("Do(%q) = %q, %v; want %q, %v", tt.args, got, err, tt.want, tt.err)
			}
		})
	}
	if pttl, err := s.Do("PTTL", "k"); err != nil || pttl <= "0" {
		t.Errorf("PTTL = %q, %v", pttl, err)
	}

	t.Run("kill and restart", func(t *testing.T) {
		s := servers[1]
		pid := s.Pid()
		s.Kill()
		if s.Running() || s.Pid() != 0 {
			t.Fatalf("still running after Kill")
		}
		if r, err := s.Do("PING"); err == nil {
			t.Fatalf("killed server answers PING: %q", r)
		}
		if r, err := servers[2].Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("other server: PING = %q, %v", r, err)
		}
		s.Kill() // a no-op
		s.Restart(t)
		if s.Pid() == pid || s.Addr != "127.0.0.1:"+strconv.Itoa(s.Port) {
			t.Fatalf("restart: pid %d (was %d), addr %s", s.Pid(), pid, s.Addr)
		}
		if r, err := s.Do("GET", "k"); !errors.Is(err, ErrNil) {
			t.Fatalf("after restart GET = %q, %v; want empty (no persistence)", r, err)
		}
	})

	t.Run("freeze and thaw", func(t *testing.T) {
		s := servers[2]
		s.Freeze()
		if _, err := do(s.Addr, nil, nil, []string{"PING"}, 200*time.Millisecond); err == nil {
			t.Fatalf("frozen server answers")
		}
		s.Thaw()
		if r, err := s.Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("thawed: PING = %q, %v", r, err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		s := servers[0]
		s.Stop()
		if s.Running() {
			t.Fatal("running after Stop")
		}
		s.Restart(t)
		if r, err := s.Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("restarted: PING = %q, %v", r, err)
		}
	})
}

func (s *Server) mustGet(t *testing.T, key string) string {
	t.Helper()
	v, err := s.Do("GET", key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWithArgs(t *testing.T) {
	s := Start(t, 1, WithArgs("--maxmemory", "64mb", "--databases", "4"))[0]
	got, err := s.DoArray("CONFIG", "GET", "maxmemory")
	if want := []string{"maxmemory", strconv.Itoa(64 << 20)}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CONFIG GET maxmemory = %q, %v; want %q", got, err, want)
	}
	if _, err := s.Do("SELECT", "4"); err == nil {
		t.Errorf("SELECT 4 works with --databases 4")
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Seeds()) != 3 || c.Seeds()[2] != c.Nodes[2].Addr {
		t.Fatalf("Seeds = %v", c.Seeds())
	}
	for _, n := range c.Nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if st := infoField(info, "cluster_state"); err != nil || st != "ok" {
			t.Fatalf("%s: cluster_state %q, %v", n.Addr, st, err)
		}
	}
	used := map[*Server]bool{}
	for i := range 30 {
		key := fmt.Sprintf("key-%d", i)
		owner := c.Owner(t, key)
		used[owner] = true
		for _, n := range c.Nodes {
			r, err := n.Do("SET", key, "v")
			if n == owner {
				if err != nil || r != "OK" {
					t.Fatalf("SET %s on its owner %s = %q, %v", key, n.Addr, r, err)
				}
				continue
			}
			var re ReplyError
			if !errors.As(err, &re) || !strings.HasPrefix(string(re), "MOVED ") || !strings.HasSuffix(string(re), " "+owner.Addr) {
				t.Fatalf("SET %s on %s = %q, %v; want MOVED to %s", key, n.Addr, r, err, owner.Addr)
			}
		}
		if v, err := owner.Do("GET", key); err != nil || v != "v" {
			t.Fatalf("GET %s = %q, %v", key, v, err)
		}
	}
	if len(used) != 3 {
		t.Errorf("30 keys fell on %d of 3 nodes", len(used))
	}
}

func TestSentinel(t *testing.T) {
	g := StartSentinel(t)
	if len(g.SentinelAddrs()) != 3 || g.MasterName != MasterName {
		t.Fatalf("SentinelAddrs = %v, MasterName %q", g.SentinelAddrs(), g.MasterName)
	}
	for _, s := range g.Sentinels {
		a, err := s.DoArray("SENTINEL", "get-master-addr-by-name", "mymaster")
		if want := []string{"127.0.0.1", strconv.Itoa(g.Primary.Port)}; err != nil || !reflect.DeepEqual(a, want) {
			t.Fatalf("Sentinel %s: master = %q, %v; want %q", s.Addr, a, err, want)
		}
	}
	if r, err := g.Primary.Do("SET", "k", "v"); err != nil || r != "OK" {
		t.Fatalf("SET on primary = %q, %v", r, err)
	}
	if n, err := g.Primary.Do("WAIT", "1", "5000"); err != nil || n != "1" {
		t.Fatalf("WAIT = %q, %v", n, err)
	}
	if v, err := g.Replica.Do("GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET on replica = %q, %v", v, err)
	}

	t.Run("failover", func(t *testing.T) {
		if testing.Short() {
			t.Skip("a failover takes seconds")
		}
		g.Primary.Kill()
		deadline := time.Now().Add(30 * time.Second)
		for {
			addr, err := g.MasterAddr()
			if err == nil && addr == g.Replica.Addr {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no failover to %s: master %q, %v", g.Replica.Addr, addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		info, err := g.Replica.Do("INFO", "replication")
		if role := infoField(info, "role"); err != nil || role != "master" {
			t.Fatalf("replica role %q, %v", role, err)
		}
	})
}

// recorder is a testing.TB that records Fatalf and Skipf instead.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, a ...any) {
	r.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, a ...any) {
	r.skip = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	dirs := searchDirs
	t.Cleanup(func() { searchDirs = dirs })
	searchDirs = nil
	t.Setenv("PATH", t.TempDir())
	if _, err := Binary(); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Binary with an empty PATH: %v", err)
	}
	for _, tt := range []struct {
		ci    string
		fatal bool
		skip  bool
	}{
		{"true", true, false},
		{"", false, true},
		{"false", false, true},
	} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() { // Fatalf and Skipf end the goroutine, as in a test
				defer close(done)
				binary(r)
			}()
			<-done
			if (r.fatal != "") != tt.fatal || (r.skip != "") != tt.skip {
				t.Fatalf("fatal %q, skip %q", r.fatal, r.skip)
			}
			if msg := r.fatal + r.skip; !strings.Contains(msg, "neither valkey-server nor redis-server on PATH") || !strings.Contains(msg, "make test") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	for _, tt := range []struct {
		name, wire string
		want       any
		err        string
	}{
		{"simple", "+OK\r\n", "OK", ""},
		{"empty simple", "+\r\n", "", ""},
		{"error", "-ERR bad\r\n", nil, "ERR bad"},
		{"integer", ":-42\r\n", int64(-42), ""},
		{"bulk", "$5\r\na\r\nb\x00\r\n", "a\r\nb\x00", ""},
		{"empty bulk", "$0\r\n\r\n", "", ""},
		{"nil bulk", "$-1\r\n", nil, ""},
		{"nil array", "*-1\r\n", nil, ""},
		{"array", "*3\r\n+a\r\n:1\r\n*1\r\n$1\r\nb\r\n", []any{"a", int64(1), []any{"b"}}, ""},
		{"short bulk", "$5\r\nab\r\n", nil, "unexpected EOF"},
		{"no CRLF", "+OK\n", nil, "malformed"},
		{"bad type", "%2\r\n", nil, "unexpected reply type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tt.wire)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("readReply = %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("readReply = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// TestTLSAndAuth starts a TLS-only server with a password and an ACL
// user: Do reaches it, a plain connection does not.
func TestTLSAndAuth(t *testing.T) {
	ca := NewCA(t)
	s := Start(t, 1, WithTLS(ca), WithPassword("admin-pw"), WithUser("gw", "gw-pw", "~*", "+@all"))[0]
	if pong, err := s.Do("PING"); err != nil || pong != "PONG" {
		t.Fatalf("PING over TLS: %q, %v", pong, err)
	}
	if who, err := s.Do("ACL", "WHOAMI"); err != nil || who != "default" {
		t.Fatalf("ACL WHOAMI: %q, %v", who, err)
	}
	if _, err := do(s.Addr, nil, nil, []string{"PING"}, time.Second); err == nil {
		t.Fatal("a plain connection got an answer from a TLS-only server")
	}
	if _, err := do(s.Addr, ca.ClientConfig(), []string{"AUTH", "gw", "wrong"}, []string{"PING"}, time.Second); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if who, err := do(s.Addr, ca.ClientConfig(), []string{"AUTH", "gw", "gw-pw"}, []string{"ACL", "WHOAMI"}, time.Second); err != nil || who != "gw" {
		t.Fatalf("ACL WHOAMI as gw: %v, %v", who, err)
	}
}
