package valkeytest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// MasterName is the name under which the Sentinels of a SentinelGroup
// monitor its primary.
const MasterName = "mymaster"

// SentinelTimeout bounds how long a new SentinelGroup may take to settle:
// the replica in sync, every Sentinel seeing the primary, the replica and
// the other Sentinels.
const SentinelTimeout = 30 * time.Second

// SentinelGroup is a primary, its replica, and three Sentinels that
// monitor them with a quorum of 2. A primary unreachable for 1 s is down;
// failover-timeout is 5 s.
type SentinelGroup struct {
	Primary    *Server
	Replica    *Server
	Sentinels  []*Server
	MasterName string
}

// SentinelAddrs returns the addresses of the Sentinels, for a client.
func (g *SentinelGroup) SentinelAddrs() []string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// MasterAddr asks the Sentinels, in order, for the address of the current
// primary and returns the first answer.
func (g *SentinelGroup) MasterAddr() (string, error) {
	var err error
	for _, s := range g.Sentinels {
		var a []string
		if a, err = s.DoArray("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName); err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
	}
	return "", fmt.Errorf("valkeytest: no Sentinel knows %s: %v", g.MasterName, err)
}

// StartSentinel starts a SentinelGroup and waits until it has settled. The
// options apply to the primary and the replica.
func StartSentinel(tb testing.TB, opts ...Option) *SentinelGroup {
	tb.Helper()
	bin := binary(tb)
	o := collect(opts)
	root := tb.TempDir()
	g := &SentinelGroup{MasterName: MasterName}
	g.Sentinels = make([]*Server, 3)
	cleanup(tb, func() []*Server {
		all := append([]*Server{g.Primary, g.Replica}, g.Sentinels...)
		return slices.DeleteFunc(all, func(s *Server) bool { return s == nil })
	})

	g.Primary = newServer(tb, bin, filepath.Join(root, "primary"), o)
	// A replica syncs at once, not after the default 5 s wait for others.
	fast := []string{"--repl-diskless-sync-delay", "0"}
	g.Primary.start(tb, func(port int) []string {
		return append(g.Primary.serverArgs(port, fast), o.args...)
	})

	g.Replica = newServer(tb, bin, filepath.Join(root, "replica"), o)
	replicaOf := []string{"--replicaof", "127.0.0.1", strconv.Itoa(g.Primary.Port)}
	g.Replica.start(tb, func(port int) []string {
		return append(g.Replica.serverArgs(port, append(replicaOf, fast...)), o.args...)
	})

	for i := range g.Sentinels {
		s := newServer(tb, bin, filepath.Join(root, fmt.Sprintf("sentinel-%d", i)), options{tls: o.tls, password: o.sentinelPassword})
		g.Sentinels[i] = s
		conf := filepath.Join(s.dir, "sentinel.conf")
		s.start(tb, func(port int) []string {
			// Sentinel rewrites its config file: it must be writable.
			text := fmt.Sprintf(`%s
bind 127.0.0.1
protected-mode no
dir %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
sentinel parallel-syncs %[3]s 1
`, sentinelListen(port, o), s.dir, g.MasterName, g.Primary.Port)
			if o.password != "" {
				text += fmt.Sprintf("sentinel auth-pass %s %s\n", g.MasterName, o.password)
			}
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				tb.Fatalf("valkeytest: %v", err)
			}
			return []string{conf, "--sentinel"}
		})
	}

	deadline := time.Now().Add(SentinelTimeout)
	wait := func(what string, ok func() (bool, string)) {
		tb.Helper()
		for {
			done, state := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("valkeytest: %s within %v: %s", what, SentinelTimeout, state)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("replica in sync", func() (bool, string) {
		info, err := g.Replica.Do("INFO", "replication")
		if err != nil {
			return false, err.Error()
		}
		st := infoField(info, "master_link_status")
		return st == "up", "master_link_status:" + st
	})
	want := map[string]string{
		"ip":                  "127.0.0.1",
		"port":                strconv.Itoa(g.Primary.Port),
		"flags":               "master",
		"num-slaves":          "1",
		"num-other-sentinels": "2",
	}
	for _, s := range g.Sentinels {
		wait("Sentinel "+s.Addr+" settled", func() (bool, string) {
			kv, err := s.DoArray("SENTINEL", "MASTER", g.MasterName)
			if err != nil {
				return false, err.Error()
			}
			for k, v := range want {
				if got := field(kv, k); got != v {
					return false, fmt.Sprintf("%s is %q, want %q", k, got, v)
				}
			}
			return true, ""
		})
	}
	return g
}

// field returns the value of name in a flat name, value, name, value… reply.
func field(kv []string, name string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == name {
			return kv[i+1]
		}
	}
	return ""
}

// sentinelListen is the start of a Sentinel's config file: its port (TLS
// only with WithTLS) and the passwords it asks for and gives.
func sentinelListen(port int, o options) string {
	text := fmt.Sprintf("port %d", port)
	if ca := o.tls; ca != nil {
		text = fmt.Sprintf("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients optional\ntls-replication yes",
			port, ca.CertFile, ca.KeyFile, ca.CAFile)
	}
	if o.sentinelPassword != "" {
		text += fmt.Sprintf("\nrequirepass %s\nsentinel sentinel-pass %[1]s", o.sentinelPassword)
	}
	return text
}
