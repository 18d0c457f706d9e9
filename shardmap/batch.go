package shardmap

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/valkey-io/valkey-go"
)

// getBatcher sends a shard's lookups without the L1 (Options.DisableL1)
// in batches, one batch in flight at a time. A GET that finds none in
// flight goes out at once, alone, or, when lookups have been meeting,
// after one yield of its processor with the GETs that were runnable then
// (see get); the GETs that arrive while one is in
// flight wait for it and go out together as the next, in one DoMulti: one
// write for the gateway, one read and one write for Valkey, where the
// pipeline alone would send most of them in writes of their own. Batches
// grow with the load by themselves, and no GET waits longer than the
// round trip already in flight; a fixed flush delay (MaxFlushDelay) costs
// every GET its full length as soon as a second one is in flight, and a
// long one halves the throughput of a few connections.
//
// Measured on loopback, 3 shards, 64 connections sharing 2 cores with wrk
// and the shards: L2 hits +16–28% req/s, and Valkey's CPU per request down
// by a third (RATIONALE.md, "Batching L2 lookups").
//
// The batcher has no goroutine of its own: the caller whose GET opens a
// run sends it, and when the replies are in, hands the queue that built up
// meanwhile to its first member, which sends that as the next batch and
// hands on in turn, until a round trip ends with nothing queued.
//
// On a standalone node or a Sentinel primary a batch is one MGET, not a
// GET per key: Valkey parses, dispatches and accounts one command instead
// of dozens (RATIONALE.md, "Batching L2 lookups"). A Cluster's keys may
// be in different slots, which one MGET cannot span, so there a batch is
// a DoMulti of GETs, which valkey-go splits by node.
type getBatcher struct {
	mu      sync.Mutex
	sending bool       // a batch is in flight
	queue   []*getCall // GETs waiting for the next batch
	warm    int        // runs left whose opener yields first (warmOpens)
	slotted bool       // a Cluster: keys of a batch may be in different slots

	batches, batched atomic.Int64 // DoMulti calls and the GETs they carried
}

// maxBatch bounds one DoMulti; the rest of the queue goes in the next.
const maxBatch = 256

// The batcher turns warm when a GET finds more than warmQueue others
// queued behind a round trip in flight (at least warmQueue+2 lookups of
// the shard at once), and then the next runs' openers yield first (see
// get); each opener whose yield gathered no company takes one of its
// warmOpens runs away. Measured on the real binaries, 3 shards: with wrk
// sharing 2 cores, 1, 2 and 4 connections unchanged, 8 +5%, 64 +11–15%
// req/s; gateway and shards on one core, 8 +20%, 64 +45% (RATIONALE.md,
// "Batching L2 lookups").
const (
	warmQueue = 2
	warmOpens = 16
)

// getCall is one GET waiting in the queue.
type getCall struct {
	key  string
	val  []byte
	err  error
	lead []*getCall // set when this call is to send the next batch (itself first)
	done chan struct{}
}

var getCallPool = sync.Pool{New: func() any { return &getCall{done: make(chan struct{}, 1)} }}

// get returns the value of key through c, or valkey.Nil's error if
// there is none.
//
// When lookups have been meeting (warm), the GET that opens a run queues
// itself like the others and yields its processor once before sending:
// the lookups that are runnable at that moment (requests already read, on
// connections the poller handed over together) reach the queue and go out
// with it in one batch. Without the yield, on a busy processor the
// opener's round trip was often over before any other lookup ran (Valkey,
// woken by the write, answers before the read), and most lookups went out
// alone: on one core with 64 clients, 20 lone GETs for each MGET. A cold
// batcher does not yield: with an idle processor the yield wakes it to
// take the opener over, which cost a one-connection gateway 60% more CPU
// per lookup, and more than it saved at 2–4 concurrent lookups; with one
// processor it made a serial lookup 39 → 51 µs (BenchmarkHit/valkey-l2
// -cpu 1). Warmth can fail to come on one processor: when every lone round
// trip ends before the next lookup runs, no GET finds one in flight to
// queue behind, and the batcher stays cold (RATIONALE.md).
func (b *getBatcher) get(ctx context.Context, c valkey.Client, key string) ([]byte, error) {
	b.mu.Lock()
	opens := !b.sending
	b.sending = true
	if opens && b.warm == 0 {
		b.mu.Unlock()
		val, err := c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
		b.handOn(false)
		return val, err
	}
	call := getCallPool.Get().(*getCall)
	call.key = key
	b.queue = append(b.queue, call)
	if !opens && len(b.queue) > warmQueue {
		b.warm = warmOpens
	}
	b.mu.Unlock()
	if opens {
		runtime.Gosched()
		b.handOn(true) // the queue holds this call, first
	}
	<-call.done
	if call.lead != nil {
		b.send(ctx, c, call.lead) // sets call.val, call.err
	}
	val, err := call.val, call.err
	call.key, call.val, call.err, call.lead = "", nil, nil, nil
	getCallPool.Put(call)
	return val, err
}

// handOn ends a round trip: it hands the queue to its first member to
// send, or, with nothing queued, ends the run. After an opener's yield
// (yielded), it is the start of the run, and an opener that gathered no
// company cools the batcher by one.
func (b *getBatcher) handOn(yielded bool) {
	b.mu.Lock()
	q := b.queue
	if yielded && len(q) == 1 { // warm > 0: only this run's opener lowers it
		b.warm--
	}
	if len(q) == 0 {
		b.sending = false
		b.mu.Unlock()
		return
	}
	n := min(len(q), maxBatch)
	batch := make([]*getCall, n)
	copy(batch, q)
	rest := copy(q, q[n:])
	clear(q[rest:])
	b.queue = q[:rest]
	b.mu.Unlock()
	batch[0].lead = batch
	batch[0].done <- struct{}{}
}

// send sends batch, whose first member is the caller, wakes the others
// with their replies and hands on. A batch of one is a plain GET, on the
// caller's context. A larger one runs on behalf of every member, so it is
// not bound to the caller's context: the connection's write timeout
// (Options.CommandTimeout) bounds it.
func (b *getBatcher) send(ctx context.Context, c valkey.Client, batch []*getCall) {
	if len(batch) == 1 {
		batch[0].val, batch[0].err = c.Do(ctx, c.B().Get().Key(batch[0].key).Build()).AsBytes()
		b.handOn(false)
		return
	}
	b.batches.Add(1)
	b.batched.Add(int64(len(batch)))
	if b.slotted {
		cmds := make(valkey.Commands, len(batch))
		for i, call := range batch {
			cmds[i] = c.B().Get().Key(call.key).Build()
		}
		for i, r := range c.DoMulti(context.Background(), cmds...) {
			batch[i].val, batch[i].err = r.AsBytes()
		}
	} else {
		keys := make([]string, len(batch))
		for i, call := range batch {
			keys[i] = call.key
		}
		vals, err := c.Do(context.Background(), c.B().Mget().Key(keys...).Build()).ToArray()
		if err == nil && len(vals) != len(batch) {
			err = fmt.Errorf("shardmap: MGET of %d keys answered %d values", len(batch), len(vals))
		}
		for i, call := range batch {
			if err != nil {
				call.err = err
				continue
			}
			call.val, call.err = vals[i].AsBytes()
		}
	}
	for _, call := range batch[1:] {
		call.done <- struct{}{}
	}
	b.handOn(false)
}
