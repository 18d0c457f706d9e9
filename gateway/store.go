package gateway

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/internal/memstore"
	"github.com/edgecache/edgecache/shardmap"
)

// tier says where a hit came from.
type tier uint8

const (
	tierL1 tier = iota // in-process: valkey-go client-side cache or the embedded store
	tierL2             // a round trip to the shard
)

// errMiss reports that the store holds no value for a key.
var errMiss = errors.New("gateway: miss")

// store is the L2 of one generation: the Valkey shards, or the embedded
// store when none is configured.
type store interface {
	// get returns a read-only view of the value under key, or errMiss, or
	// the shard's error.
	get(ctx context.Context, key string, now time.Time) ([]byte, tier, error)
	set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	del(ctx context.Context, key string) error
}

// shardStore is the Valkey shards of a generation. During a rebalance
// window (prev set, now before prevUntil) a key missing on its owner is
// read from its previous owner and copied over, so that a shard-map change
// does not send every moved key to the origin at once.
type shardStore struct {
	shards    *shardmap.Set
	prev      *shardmap.Set
	prevUntil int64 // unix ns
}

func (s shardStore) get(ctx context.Context, key string, now time.Time) ([]byte, tier, error) {
	owner := s.shards.Pick(key)
	val, l1, err := owner.Get(ctx, key, now)
	if err == shardmap.ErrNotFound && s.prev != nil && now.UnixNano() < s.prevUntil {
		if old := s.prev.Pick(key); old != owner {
			if v, _, perr := old.Get(ctx, key, now); perr == nil {
				copyOver(ctx, owner, key, v, now)
				return v, tierL2, nil
			}
		}
	}
	if err != nil {
		if err == shardmap.ErrNotFound {
			err = errMiss
		}
		return nil, 0, err
	}
	if l1 {
		return val, tierL1, nil
	}
	return val, tierL2, nil
}

func (s shardStore) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.shards.Pick(key).Set(ctx, key, val, ttl)
}

func (s shardStore) del(ctx context.Context, key string) error {
	return s.shards.Pick(key).Del(ctx, key)
}

type memStore struct{ m *memstore.Store }

func (s memStore) get(_ context.Context, key string, _ time.Time) ([]byte, tier, error) {
	if v, ok := s.m.Get(key); ok {
		return v, tierL1, nil
	}
	return nil, 0, errMiss
}

func (s memStore) set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	s.m.Set(key, val, ttl)
	return nil
}

func (s memStore) del(_ context.Context, key string) error {
	s.m.Delete(key)
	return nil
}

// copyOver stores an entry read from a key's previous owner on its new
// owner, for the rest of the entry's life.
func copyOver(ctx context.Context, owner *shardmap.Shard, key string, val []byte, now time.Time) {
	m, err := entry.Peek(val)
	if err != nil {
		return
	}
	until := time.UnixMilli(m.FreshUntil).Add(m.StaleWhileRevalidate + m.StaleIfError)
	if ttl := until.Sub(now); ttl > 0 {
		_ = owner.Set(ctx, key, bytes.Clone(val), ttl)
	}
}
