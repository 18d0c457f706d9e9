package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/internal/memstore"
	"github.com/edgecache/edgecache/shardmap"
)

// tier says where a hit came from.
type tier uint8

const (
	tierL1       tier = iota // in-process: valkey-go client-side cache or the embedded store
	tierL2                   // a round trip to the shard
	tierFallback             // in-process, standing in for a shard that failed (valkey.fallback_ttl)
)

// local reports whether the bytes came from this process's memory, where
// an entry's bytes stay put for its life (the view memo keys on them).
func (t tier) local() bool { return t != tierL2 }

// errMiss reports that the store holds no value for a key.
var errMiss = errors.New("gateway: miss")

// store is the L2 of one generation: the Valkey shards, or the embedded
// store when none is configured.
type store interface {
	// get returns a read-only view of the value under key, or errMiss, or
	// the shard's error.
	get(ctx context.Context, key string, now time.Time) ([]byte, tier, error)
	// getDirect is get without the L1, for re-checks that must see the
	// shard's current value.
	getDirect(ctx context.Context, key string) ([]byte, error)
	// set stores val for ttl and indexes key under each tag.
	set(ctx context.Context, key string, val []byte, ttl time.Duration, tags []string) error
	setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	extend(ctx context.Context, key string, ttl time.Duration) error
	del(ctx context.Context, keys ...string) error
	// softPurge marks key stale at staleAt, keeping it for stale-if-error
	// and revalidation; it reports whether the key existed.
	softPurge(ctx context.Context, key string, staleAt time.Time) (bool, error)
	// purgeTag purges every entry indexed under tag, on every shard.
	purgeTag(ctx context.Context, tag string, soft bool, staleAt time.Time) (int, error)
	// tryLock takes the cross-gateway fill lock of key for at most ttl,
	// without waiting. held is false when another holder has it;
	// supported is false when the store has no such lock, or nobody to
	// coordinate with (shardmap/peers.go).
	tryLock(ctx context.Context, key string, ttl time.Duration) (lock *shardmap.Lock, held, supported bool, err error)
	// setReleasing is set of it that also frees lock (nil: none), in the
	// same round trip when the lock is on the key's shard (else it stays
	// held: the caller releases it).
	setReleasing(ctx context.Context, it storeItem, lock *shardmap.Lock) error
	// owner names the shard that holds key ("" for the embedded store).
	owner(key string) string
	// hasFallback reports whether entries can be kept for shards that
	// fail (valkey.fallback_ttl); setFallback keeps one there.
	hasFallback() bool
	setFallback(key string, val []byte, ttl time.Duration, tags []string)
}

func msBytes(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMilli()))
	return b[:]
}

// shardStore adapts the Valkey shards of a generation to store. Where a
// key lives, during a rebalance window too, is the shard set's business
// (shardmap.Set.Get, Owners, Reach); shardStore adds the fallback.
type shardStore struct {
	shards *shardmap.Set
	fb     *fallback // nil: off
}

// fallback is the gateway's own memory standing in for shards that fail.
// What a shard could not store (it was down, frozen, partitioned, or its
// breaker was open) is kept here for at most ttl, and served when the
// shard fails to answer for it; an entry is never read from here while
// its shard answers. So an outage costs the origin about one request per
// key per ttl instead of every request for the shard's keys.
//
// It is one gateway's memory: a purge through this gateway reaches it, a
// purge through another gateway during the outage does not, and this
// gateway may serve the purged entry for up to ttl (valkey.fallback_ttl,
// 10s by default; negative turns the fallback off).
type fallback struct {
	memStore
	ttl time.Duration
}

func (f *fallback) get(key string) ([]byte, bool) {
	if f == nil {
		return nil, false
	}
	return f.m.Get(key)
}

func (s shardStore) get(ctx context.Context, key string, now time.Time) ([]byte, tier, error) {
	val, l1, err := s.shards.Get(ctx, key, now)
	if err != nil {
		if err == shardmap.ErrNotFound {
			if !l1 {
				return nil, tierL2, errMiss // untracked: the L1 does not hold the answer (fill.untracked)
			}
			return nil, tierL1, errMiss
		}
		if v, ok := s.fb.get(key); ok {
			return v, tierFallback, nil
		}
		return nil, 0, err
	}
	if l1 {
		return val, tierL1, nil
	}
	return val, tierL2, nil
}

// getDirect reads key from its shard; if the shard fails, from the
// fallback, which is what the shard would have held.
func (s shardStore) getDirect(ctx context.Context, key string) ([]byte, error) {
	val, err := s.shards.Pick(key).GetDirect(ctx, key)
	switch {
	case err == shardmap.ErrNotFound:
		err = errMiss
	case err != nil:
		if v, ok := s.fb.get(key); ok {
			return v, nil
		}
	}
	return val, err
}

func (s shardStore) hasFallback() bool { return s.fb != nil }

func (s shardStore) setFallback(key string, val []byte, ttl time.Duration, tags []string) {
	if s.fb != nil {
		_ = s.fb.set(context.Background(), key, val, min(ttl, s.fb.ttl), tags)
	}
}

// set stores val on key's shard, or, if the shard fails, in the fallback
// (then it succeeds: the entry is stored, for a while, where the next
// lookup will find it).
func (s shardStore) set(ctx context.Context, key string, val []byte, ttl time.Duration, tags []string) error {
	err := s.shards.Pick(key).Set(ctx, key, val, ttl, tags...)
	if err != nil && s.fb != nil {
		s.setFallback(key, val, ttl, tags)
		return nil
	}
	return err
}

// storeItem is one value to set: under key, for ttl, indexed under tags.
type storeItem struct {
	key  string
	val  []byte
	ttl  time.Duration
	tags []string
}

func (s shardStore) setReleasing(ctx context.Context, it storeItem, lock *shardmap.Lock) error {
	if lock == nil || lock.Shard() != s.shards.Pick(it.key) {
		return s.set(ctx, it.key, it.val, it.ttl, it.tags)
	}
	err := lock.SetReleasing(ctx, it.key, it.val, it.ttl, it.tags...)
	if err != nil && s.fb != nil {
		s.setFallback(it.key, it.val, it.ttl, it.tags)
		return nil
	}
	return err
}

func (s shardStore) setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := s.shards.Pick(key).SetNX(ctx, key, val, ttl)
	if err != nil && s.fb != nil {
		return s.fb.setNX(ctx, key, val, min(ttl, s.fb.ttl))
	}
	return ok, err
}

func (s shardStore) extend(ctx context.Context, key string, ttl time.Duration) error {
	err := s.shards.Pick(key).Extend(ctx, key, ttl)
	if err != nil && s.fb != nil {
		return s.fb.extend(ctx, key, min(ttl, s.fb.ttl))
	}
	return err
}

// del, softPurge and purgeTag reach the fallback too, whether or not the
// shards answer: an entry purged while its shard is up must not come back
// from the fallback in its next outage.
func (s shardStore) del(ctx context.Context, keys ...string) error {
	if s.fb != nil {
		_ = s.fb.del(ctx, keys...)
	}
	var errs []error
	now := time.Now()
	for _, k := range keys {
		owner, prev := s.shards.Owners(k, now) // prev: the owner before a rebalance, in its window
		errs = append(errs, owner.Del(ctx, k))
		if prev != nil {
			errs = append(errs, prev.Del(ctx, k))
		}
	}
	return errors.Join(errs...)
}

func (s shardStore) softPurge(ctx context.Context, key string, staleAt time.Time) (bool, error) {
	found := false
	if s.fb != nil {
		found, _ = s.fb.softPurge(ctx, key, staleAt)
	}
	var errs []error
	owner, prev := s.shards.Owners(key, time.Now())
	for _, sh := range []*shardmap.Shard{owner, prev} {
		if sh != nil {
			ok, err := sh.SoftPurge(ctx, key, entry.FreshUntilOffset, msBytes(staleAt))
			found = found || ok
			errs = append(errs, err)
		}
	}
	return found, errors.Join(errs...)
}

// purgeTag asks every shard a key may be read from (during a rebalance
// window, the shards that left too): a tag's entries live wherever their
// keys hash, and each shard indexes its own.
func (s shardStore) purgeTag(ctx context.Context, tag string, soft bool, staleAt time.Time) (int, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		n    int
		errs []error
	)
	if s.fb != nil {
		n, _ = s.fb.purgeTag(ctx, tag, soft, staleAt)
	}
	for _, sh := range s.shards.Reach(time.Now()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := sh.PurgeTag(ctx, tag, soft, entry.FreshUntilOffset, msBytes(staleAt))
			mu.Lock()
			n += k
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

// tryLock takes the lock on key's shard, unless this gateway is the only
// one that uses the shard: its singleflight is then all the coordination
// there is to have, and the lock would cost every miss a round trip
// (shardmap/peers.go).
func (s shardStore) tryLock(ctx context.Context, key string, ttl time.Duration) (*shardmap.Lock, bool, bool, error) {
	sh := s.shards.Pick(key)
	if sh.Alone(ctx, time.Now()) {
		return nil, false, false, nil
	}
	lock, held, err := sh.TryLock(ctx, key, ttl)
	return lock, held, true, err
}

// memberID names this gateway on the shards' roll: the host and a random
// part, so that two gateways on one host (or in one test) are two.
func memberID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	return host + "/" + hex.EncodeToString(b[:])
}

func (s shardStore) owner(key string) string { return s.shards.Pick(key).Name }

// entryLife is how long an entry read from a key's previous owner during
// a rebalance window is copied to its new owner for: the rest of its
// life, stale windows included (shardmap.BuildOptions.Life).
func entryLife(val []byte, now time.Time) time.Duration {
	m, err := entry.Peek(val)
	if err != nil {
		return 0
	}
	return time.UnixMilli(m.FreshUntil).Add(max(m.StaleWhileRevalidate, m.StaleIfError)).Sub(now)
}

// memStore is the embedded store, with its tag index kept in process.
type memStore struct {
	m    *memstore.Store
	tags *tagIndex
}

type tagIndex struct {
	mu   sync.Mutex
	keys map[string]map[string]struct{}
}

func newMemStore(m *memstore.Store) memStore {
	return memStore{m: m, tags: &tagIndex{keys: map[string]map[string]struct{}{}}}
}

func (s memStore) get(_ context.Context, key string, _ time.Time) ([]byte, tier, error) {
	if v, ok := s.m.Get(key); ok {
		return v, tierL1, nil
	}
	return nil, 0, errMiss
}

func (s memStore) getDirect(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.get(ctx, key, time.Time{})
	return v, err
}

func (s memStore) set(_ context.Context, key string, val []byte, ttl time.Duration, tags []string) error {
	s.m.Set(key, val, ttl)
	if len(tags) > 0 {
		s.tags.mu.Lock()
		for _, t := range tags {
			if s.tags.keys[t] == nil {
				s.tags.keys[t] = map[string]struct{}{}
			}
			s.tags.keys[t][key] = struct{}{}
		}
		s.tags.mu.Unlock()
	}
	return nil
}

func (s memStore) setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return s.m.SetIfAbsent(key, val, ttl), nil
}

func (s memStore) extend(_ context.Context, key string, ttl time.Duration) error {
	s.m.Extend(key, ttl)
	return nil
}

func (s memStore) del(_ context.Context, keys ...string) error {
	for _, k := range keys {
		s.m.Delete(k)
	}
	return nil
}

func (s memStore) softPurge(_ context.Context, key string, staleAt time.Time) (bool, error) {
	v, ok := s.m.Get(key)
	if !ok || len(v) < entry.FreshUntilOffset+8 {
		return false, nil
	}
	c := bytes.Clone(v) // stored values are shared views: never modified in place
	copy(c[entry.FreshUntilOffset:], msBytes(staleAt))
	s.m.Replace(key, c)
	return true, nil
}

func (s memStore) purgeTag(ctx context.Context, tag string, soft bool, staleAt time.Time) (int, error) {
	s.tags.mu.Lock()
	keys := s.tags.keys[tag]
	if !soft {
		delete(s.tags.keys, tag)
	}
	s.tags.mu.Unlock()
	n := 0
	for k := range keys {
		if soft {
			if ok, _ := s.softPurge(ctx, k, staleAt); ok {
				n++
			}
		} else if _, ok := s.m.Get(k); ok {
			s.m.Delete(k)
			n++
		}
	}
	return n, nil
}

func (s memStore) setReleasing(ctx context.Context, it storeItem, _ *shardmap.Lock) error {
	return s.set(ctx, it.key, it.val, it.ttl, it.tags) // a memStore gives out no locks
}

func (s memStore) tryLock(context.Context, string, time.Duration) (*shardmap.Lock, bool, bool, error) {
	return nil, false, false, nil
}

func (s memStore) owner(string) string { return "" }

func (memStore) hasFallback() bool                                   { return false }
func (memStore) setFallback(string, []byte, time.Duration, []string) {}
