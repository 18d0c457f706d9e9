package shardmap

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

// peerOptions are the options of a gateway named member, with the L1.
func peerOptions(member string) Options {
	return Options{L1TTL: time.Minute, DialTimeout: time.Second, CommandTimeout: 500 * time.Millisecond,
		BreakerFailures: 5, BreakerCooldown: 200 * time.Millisecond, Member: member}
}

// waitAlone waits until s.Alone says want (an invalidation is delivered
// asynchronously).
func waitAlone(t *testing.T, s *Shard, want bool, why string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for s.Alone(context.Background(), time.Now()) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: Alone stayed %v", why, !want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPeersRoll: a gateway alone on a shard is Alone; one that joins makes
// both not alone (the first learns it from the roll's invalidation, with
// no beat); one that leaves makes the other alone again; a dead gateway's
// entry that ran out does not count, a live one does; no member id, no
// own entry on the roll (FLUSHALL) and a shard without L1 are never
// alone. Standalone and Cluster.
func TestPeersRoll(t *testing.T) {
	for _, kind := range []string{"standalone", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			spec := Spec{Name: "a"}
			var node *valkeytest.Server
			if kind == "standalone" {
				node = valkeytest.Start(t, 1)[0]
				spec.Addr = node.Addr
			} else {
				c := valkeytest.StartCluster(t, 3)
				spec.Cluster = strings.Join(c.Seeds(), ",")
				node = c.Owner(t, PeersKey)
			}
			a := Dial(spec, peerOptions("gw-a"))
			defer a.Close()
			waitAlone(t, a, true, "one gateway on the shard")

			b := Dial(spec, peerOptions("gw-b"))
			waitAlone(t, b, false, "b, with a on the roll")
			waitAlone(t, a, false, "a, after b joined")
			b.Close()
			waitAlone(t, a, true, "a, after b closed")

			// An entry that ran out (a gateway that died 40 s ago) is
			// ignored; one that lasts is not.
			past := strconv.FormatInt(time.Now().Add(-10*time.Second).UnixMilli(), 10)
			if _, err := node.Do("ZADD", PeersKey, past, "gw-dead"); err != nil {
				t.Fatal(err)
			}
			waitAlone(t, a, true, "a, with only a dead entry besides its own")
			future := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
			if _, err := node.Do("ZADD", PeersKey, future, "gw-c"); err != nil {
				t.Fatal(err)
			}
			waitAlone(t, a, false, "a, with a live entry of another gateway")
			if _, err := node.Do("DEL", PeersKey); err != nil {
				t.Fatal(err)
			}
			waitAlone(t, a, false, "a, its own entry gone")
			if err := a.join(); err != nil {
				t.Fatal(err)
			}
			waitAlone(t, a, true, "a, after its next beat")

			noID := Dial(spec, peerOptions(""))
			defer noID.Close()
			if noID.Alone(context.Background(), time.Now()) {
				t.Fatal("a shard without a member id said it was alone")
			}
			o := peerOptions("gw-nol1")
			o.DisableL1 = true
			noL1 := Dial(spec, o)
			defer noL1.Close()
			if noL1.Alone(context.Background(), time.Now()) {
				t.Fatal("a shard without L1 said it was alone")
			}
			waitAlone(t, a, false, "a, with the gateway without L1 on the roll")
		})
	}
}

// TestRetiredShardClosesOffTheCall: the last call to end on a retired
// shard does not wait for its Close, whose leave of the roll waits up to
// a second on a stalled server (SIGSTOP here); the shard closes anyway.
func TestRetiredShardClosesOffTheCall(t *testing.T) {
	node := valkeytest.Start(t, 1)[0]
	s := Dial(Spec{Name: "a", Addr: node.Addr}, peerOptions("gw-a"))
	defer s.Close()
	waitAlone(t, s, true, "the gateway on its shard")
	if _, err := s.acquire(time.Now().UnixNano()); err != nil { // a call in flight
		t.Fatal(err)
	}
	s.retire()
	if !s.Connected() {
		t.Fatal("retired with a call in flight: closed before the call ended")
	}
	p, err := os.FindProcess(node.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Signal(syscall.SIGCONT) }()
	start := time.Now()
	s.release()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("the last call's release took %v: it waited for Close", d)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(t, s) {
		t.Fatal("the retired shard did not close after its last call")
	}
}
