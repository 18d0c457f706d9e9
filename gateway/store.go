package gateway

import (
	"context"
	"errors"
	"time"

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
	close()
}

type shardStore struct{ set *shardmap.Set }

func (s shardStore) get(ctx context.Context, key string, now time.Time) ([]byte, tier, error) {
	val, l1, err := s.set.Pick(key).Get(ctx, key, now)
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
	return s.set.Pick(key).Set(ctx, key, val, ttl)
}

func (s shardStore) del(ctx context.Context, key string) error {
	return s.set.Pick(key).Del(ctx, key)
}

func (s shardStore) close() { s.set.Close() }

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

func (s memStore) close() { s.m.Close() }
