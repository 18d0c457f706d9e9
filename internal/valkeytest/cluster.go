package valkeytest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClusterTimeout bounds how long a new Cluster may take to reach
// cluster_state:ok on every node.
const ClusterTimeout = 30 * time.Second

// slots is the number of hash slots of a Valkey Cluster.
const slots = 16384

// Cluster is a Valkey Cluster of primaries only, each owning an equal run
// of the hash slots in order: Nodes[0] the lowest.
type Cluster struct {
	Nodes    []*Server
	Replicas []*Server // after AddReplicas: Replicas[i] replicates Nodes[i]
	bus      []int     // cluster bus port of Nodes[i]
}

// Seeds returns the addresses of the nodes, for a cluster client.
func (c *Cluster) Seeds() []string {
	seeds := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		seeds[i] = n.Addr
	}
	return seeds
}

// StartCluster starts a Cluster of primaries nodes and waits until every
// node reports cluster_state:ok with all slots covered. It does what
// `valkey-cli --cluster create --cluster-replicas 0` does (slots, config
// epochs, MEET), over Do, so no CLI is needed. Nodes announce 127.0.0.1;
// each has its own cluster bus port (cluster-port, Redis 7 or Valkey).
func StartCluster(tb testing.TB, primaries int, opts ...Option) *Cluster {
	tb.Helper()
	if primaries < 1 || primaries > slots {
		tb.Fatalf("valkeytest: a cluster of %d primaries", primaries)
	}
	bin := binary(tb)
	o := collect(opts)
	root := tb.TempDir()
	c := &Cluster{}
	cleanup(tb, func() []*Server { return append(append([]*Server(nil), c.Nodes...), c.Replicas...) })
	bus := make([]int, primaries)
	c.bus = bus
	for i := range primaries {
		s := newServer(tb, bin, filepath.Join(root, fmt.Sprintf("node-%d", i)), o)
		c.Nodes = append(c.Nodes, s)
		s.start(tb, func(port int) []string {
			bus[i], _ = freePort()
			args := s.serverArgs(port, []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				"--cluster-port", strconv.Itoa(bus[i]),
				"--cluster-announce-ip", "127.0.0.1",
			})
			return append(append(args, clusterTLS(o)...), o.args...)
		})
	}
	for i, n := range c.Nodes {
		first, last := slotRange(i, primaries)
		cmd := []string{"CLUSTER", "ADDSLOTS"}
		for slot := first; slot <= last; slot++ {
			cmd = append(cmd, strconv.Itoa(slot))
		}
		mustDo(tb, n, cmd...)
		mustDo(tb, n, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
	}
	for i, n := range c.Nodes[1:] {
		mustDo(tb, c.Nodes[0], "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(n.Port), strconv.Itoa(bus[i+1]))
	}
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(slots),
		"cluster_slots_ok":       strconv.Itoa(slots),
		"cluster_known_nodes":    strconv.Itoa(primaries),
		"cluster_size":           strconv.Itoa(primaries),
	}
	deadline := time.Now().Add(ClusterTimeout)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			bad := ""
			if err != nil {
				bad = err.Error()
			}
			for k, v := range want {
				if got := infoField(info, k); err == nil && got != v {
					bad = fmt.Sprintf("%s is %q, want %q", k, got, v)
				}
			}
			if bad == "" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("valkeytest: cluster not ready within %v: node %s: %s", ClusterTimeout, n.Addr, bad)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// slotRange returns the first and last slot of node i of n.
func slotRange(i, n int) (first, last int) { return i * slots / n, (i+1)*slots/n - 1 }

// Owner returns the node that was given key's slot at start (asking
// Nodes[0] for the slot): the node to Do key commands on, until a test
// moves slots or fails nodes over.
func (c *Cluster) Owner(tb testing.TB, key string) *Server {
	tb.Helper()
	slot, err := strconv.Atoi(mustDo(tb, c.Nodes[0], "CLUSTER", "KEYSLOT", key))
	if err != nil {
		tb.Fatalf("valkeytest: CLUSTER KEYSLOT: %v", err)
	}
	for i, n := range c.Nodes {
		if _, last := slotRange(i, len(c.Nodes)); slot <= last {
			return n
		}
	}
	panic("unreachable")
}

// mustDo runs a command on s and ends the test if it fails.
func mustDo(tb testing.TB, s *Server, args ...string) string {
	tb.Helper()
	r, err := s.Do(args...)
	if err != nil {
		name := strings.Join(args, " ")
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		tb.Fatalf("valkeytest: %s on %s: %v", name, s.Addr, err)
	}
	return r
}

// AddReplicas starts one replica for each primary, joins it to the
// cluster and waits until every replica is in sync with its primary, so
// that killing a primary makes the cluster fail over to its replica
// (cluster-node-timeout 2 s). Replicas[i] replicates Nodes[i].
func (c *Cluster) AddReplicas(tb testing.TB, opts ...Option) {
	tb.Helper()
	bin := binary(tb)
	o := collect(opts)
	root := tb.TempDir()
	for i, p := range c.Nodes {
		id := strings.TrimSpace(mustDo(tb, p, "CLUSTER", "MYID"))
		r := newServer(tb, bin, filepath.Join(root, fmt.Sprintf("replica-%d", i)), o)
		var bus int
		r.start(tb, func(port int) []string {
			bus, _ = freePort()
			args := r.serverArgs(port, []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-announce-ip", "127.0.0.1",
				"--repl-diskless-sync", "yes",
				"--repl-diskless-sync-delay", "0",
			})
			return append(append(args, clusterTLS(o)...), o.args...)
		})
		c.Replicas = append(c.Replicas, r)
		mustDo(tb, r, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(p.Port), strconv.Itoa(c.bus[i]))
		deadline := time.Now().Add(ClusterTimeout)
		for { // the replica must know the primary before it can replicate it
			if _, err := r.Do("CLUSTER", "REPLICATE", id); err == nil {
				break
			} else if time.Now().After(deadline) {
				tb.Fatalf("valkeytest: CLUSTER REPLICATE on %s: %v", r.Addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(ClusterTimeout)
	for _, r := range c.Replicas {
		for {
			info, _ := r.Do("INFO", "replication")
			if infoField(info, "master_link_status") == "up" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("valkeytest: replica %s not in sync within %v", r.Addr, ClusterTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// clusterTLS makes the Cluster bus speak TLS too when the nodes do; the
// nodes then announce their TLS port to clients.
func clusterTLS(o options) []string {
	if o.tls == nil {
		return nil
	}
	return []string{"--tls-cluster", "yes"}
}
