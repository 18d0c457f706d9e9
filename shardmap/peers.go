package shardmap

import (
	"context"
	"strconv"
	"time"
)

// Peers: does a fill need the cross-gateway lock?
//
// The fill lock (lock.go) keeps N gateways that miss the same key at once
// from sending it to the origin N times. A gateway alone on a shard has
// nobody to coordinate with: its singleflight already sends each key once,
// and the lock is one more round trip on every miss, for nothing. So each
// gateway says on each of its shards that it uses it, and takes the lock
// only where another gateway has said so too.
//
// The roll is a sorted set on every shard, PeersKey: a gateway's member id
// (Options.Member) scored by the Unix millisecond its entry lasts until. A
// gateway writes its entry when it connects and every peerBeat after, and
// removes it when the shard closes. Alone reads the roll through the L1
// (DoCache): the answer costs no round trip while no gateway joins, beats
// or leaves, and one that does changes the set, which invalidates every
// other gateway's copy (tracking). A gateway that joins is seen by the
// others within that invalidation's delivery; a gateway that dies is
// listed until its entry's peerLife runs out, and the others keep taking
// locks meanwhile, as before.
//
// Every doubt answers "not alone", which is the behaviour without the
// roll: no member id, a shard without L1 (each answer would be a round
// trip), a failed read, an unexpected reply, our own entry missing (the
// others may not know of us: a FLUSHALL, a user whose ACL refuses ZADD).
// Entries are judged by each gateway's own clock, so gateways whose clocks
// differ by more than peerLife may miss each other's entries; that costs
// duplicate origin fetches (no lock), never a wrong answer.

// PeersKey is the sorted set of the gateways that use a shard.
const PeersKey = "edgecache:peers"

// peerBeat is how often a gateway renews its entry; peerLife is how long an
// entry lasts unless renewed.
const (
	peerBeat = 10 * time.Second
	peerLife = 3 * peerBeat
)

// join writes (or renews) s's entry in the roll, drops entries that have
// run out, and keeps the roll itself alive for peerLife.
func (s *Shard) join() error {
	b := s.client.Load()
	if b == nil {
		return ErrDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.peerTimeout())
	defer cancel()
	c, now := b.c, time.Now().UnixMilli()
	return firstErr(c.DoMulti(ctx,
		c.B().Zadd().Key(PeersKey).ScoreMember().ScoreMember(float64(now+peerLife.Milliseconds()), s.opts.Member).Build(),
		c.B().Zremrangebyscore().Key(PeersKey).Min("-inf").Max(strconv.FormatInt(now, 10)).Build(),
		c.B().Pexpire().Key(PeersKey).Milliseconds(peerLife.Milliseconds()).Build()))
}

// leave removes s's entry from the roll, best effort: a shard whose
// breaker is open is not waited on (the entry runs out by itself).
func (s *Shard) leave(b *clientBox) {
	if s.br.openUntil.Load() != 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.peerTimeout())
	defer cancel()
	_ = b.c.Do(ctx, b.c.B().Zrem().Key(PeersKey).Member(s.opts.Member).Build()).Error()
}

func (s *Shard) peerTimeout() time.Duration {
	if t := s.opts.CommandTimeout; t > 0 && t < time.Second {
		return t
	}
	return time.Second
}

// beat renews s's entry every peerBeat until stop is closed. A beat that
// fails (the shard is down) is tried again at the next one; a shard that
// reconnects joins at once (redial).
func (s *Shard) beat(stop <-chan struct{}) {
	t := time.NewTicker(peerBeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.join()
		}
	}
}

// Alone reports whether s's roll lists no other gateway whose entry lasts
// past now, and lists this one: a fill of a key on s then needs no
// cross-gateway lock. Any doubt is false (see the top of this file).
func (s *Shard) Alone(ctx context.Context, now time.Time) bool {
	if s.opts.Member == "" {
		return false
	}
	b := s.client.Load()
	if b == nil || b.noL1 {
		return false
	}
	c := b.c
	rows, err := c.DoCache(ctx, c.B().Zrange().Key(PeersKey).Min("0").Max("-1").Withscores().Cache(), s.opts.L1TTL).ToArray()
	if err != nil {
		return false
	}
	ms, self := float64(now.UnixMilli()), false
	for i := range rows {
		row, err := rows[i].ToArray() // RESP3: [member, score]
		if err != nil || len(row) != 2 {
			return false
		}
		member, err1 := row[0].ToString()
		until, err2 := row[1].AsFloat64()
		switch {
		case err1 != nil || err2 != nil:
			return false
		case member == s.opts.Member:
			self = true
		case until > ms:
			return false
		}
	}
	return self
}
