package shardmap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/valkey-io/valkey-go"
)

// Defaults of the certificate storage.
const (
	// DefaultCertPrefix starts every key the storage writes.
	DefaultCertPrefix = "edgecache:acme:"
	// DefaultCertLockTTL is how long a lock outlives a gateway that died
	// holding it; a live holder refreshes it every third of that.
	DefaultCertLockTTL = time.Minute
	// certLockPoll is how often a waiter tries a held lock again.
	certLockPoll = 250 * time.Millisecond
)

// CertStorage is a certmagic.Storage in Valkey, so that the gateways of a
// POP share certificates, keys, the ACME account and issuance locks: one
// of them orders a certificate, the others load it.
//
// Each item is a hash (v: the value, m: modified, Unix ns) under
// prefix+"k:"+key, and every key is also a member of the sorted set
// prefix+"index" (all scores 0), so List is a ZRANGEBYLEX over the
// directory instead of a SCAN of a shard full of cache entries. A lock is
// a string prefix+"lock:"+name holding a random token, set with NX and a
// TTL, refreshed while held, deleted only by its holder.
type CertStorage struct {
	c      valkey.Client
	prefix string
	ttl    time.Duration

	mu    sync.Mutex
	held  map[string]heldLock
	owner string
}

type heldLock struct {
	token string
	stop  context.CancelFunc
}

var _ certmagic.Storage = (*CertStorage)(nil)

// NewCertStorage connects to the shard of spec (without client-side
// caching: certificates are read rarely and must be current).
func NewCertStorage(spec Spec, o Options) (*CertStorage, error) {
	opt, err := (&Shard{Spec: spec, opts: o}).clientOption()
	if err != nil {
		return nil, fmt.Errorf("shardmap: certificate storage on %s (%s): %w", spec.Name, spec.Target(), err)
	}
	opt.DisableCache = true
	opt.DisableRetry = false // storage calls are off the request path: ride out a blip
	c, err := valkey.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("shardmap: certificate storage on %s (%s): %w", spec.Name, spec.Target(), err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &CertStorage{c: c, prefix: DefaultCertPrefix, ttl: DefaultCertLockTTL, held: map[string]heldLock{}, owner: hex.EncodeToString(b[:])}, nil
}

// Close releases the locks held and the connection.
func (s *CertStorage) Close() {
	s.mu.Lock()
	names := make([]string, 0, len(s.held))
	for n := range s.held {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		_ = s.Unlock(context.Background(), n)
	}
	s.c.Close()
}

func (s *CertStorage) item(key string) string { return s.prefix + "k:" + key }
func (s *CertStorage) index() string          { return s.prefix + "index" }

// Store writes value under key.
func (s *CertStorage) Store(ctx context.Context, key string, value []byte) error {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	cmds := valkey.Commands{
		s.c.B().Hset().Key(s.item(key)).FieldValue().FieldValue("v", valkey.BinaryString(value)).FieldValue("m", now).Build(),
		s.c.B().Zadd().Key(s.index()).ScoreMember().ScoreMember(0, key).Build(),
	}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("shardmap: store %s: %w", key, err)
		}
	}
	return nil
}

// Load reads key; a missing key is fs.ErrNotExist, as certmagic expects.
func (s *CertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Do(ctx, s.c.B().Hget().Key(s.item(key)).Field("v").Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("shardmap: load %s: %w", key, err)
	}
	return b, nil
}

// Delete removes key and, as file storage does, everything below it.
func (s *CertStorage) Delete(ctx context.Context, key string) error {
	below, err := s.List(ctx, key, true)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	keys := append([]string{key}, below...)
	found := false
	for _, k := range keys {
		n, err := s.c.Do(ctx, s.c.B().Del().Key(s.item(k)).Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("shardmap: delete %s: %w", k, err)
		}
		found = found || n > 0
		if err := s.c.Do(ctx, s.c.B().Zrem().Key(s.index()).Member(k).Build()).Error(); err != nil {
			return fmt.Errorf("shardmap: delete %s: %w", k, err)
		}
	}
	if !found {
		return fs.ErrNotExist
	}
	return nil
}

// Exists reports whether key is stored.
func (s *CertStorage) Exists(ctx context.Context, key string) bool {
	n, err := s.c.Do(ctx, s.c.B().Exists().Key(s.item(key)).Build()).AsInt64()
	return err == nil && n > 0
}

// List returns the keys below path: its direct children, or with
// recursive every key below it.
func (s *CertStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	dir := strings.TrimSuffix(path, "/") + "/"
	if path == "" {
		dir = ""
	}
	members, err := s.c.Do(ctx, s.c.B().Zrangebylex().Key(s.index()).Min("["+dir).Max("["+dir+"\xff").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("shardmap: list %s: %w", path, err)
	}
	var out []string
	seen := map[string]bool{}
	for _, m := range members {
		rest := strings.TrimPrefix(m, dir)
		if !recursive {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				m = dir + rest[:i] // a "directory" child
			}
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fs.ErrNotExist
	}
	return out, nil
}

// Stat describes key: a stored item, or a "directory" with keys below.
func (s *CertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	vals, err := s.c.Do(ctx, s.c.B().Hmget().Key(s.item(key)).Field("m").Build()).ToArray()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("shardmap: stat %s: %w", key, err)
	}
	if m, err := vals[0].AsInt64(); err == nil {
		size, _ := s.c.Do(ctx, s.c.B().Hstrlen().Key(s.item(key)).Field("v").Build()).AsInt64()
		return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, m), Size: size, IsTerminal: true}, nil
	}
	if below, err := s.List(ctx, key, false); err == nil && len(below) > 0 {
		return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
	}
	return certmagic.KeyInfo{}, fs.ErrNotExist
}

// refreshScript extends a lock only while it still holds our token (the
// release is shard.go's unlockScript).
var refreshScript = valkey.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// Lock waits until it holds name or ctx is done. The lock is refreshed
// while held, and expires DefaultCertLockTTL after a holder that died.
func (s *CertStorage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(certLockPoll):
		}
	}
}

// TryLock takes name if nobody holds it.
func (s *CertStorage) TryLock(ctx context.Context, name string) (bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := s.owner + ":" + hex.EncodeToString(b[:])
	key := s.prefix + "lock:" + name
	err := s.c.Do(ctx, s.c.B().Set().Key(key).Value(token).Nx().PxMilliseconds(s.ttl.Milliseconds()).Build()).Error()
	if valkey.IsValkeyNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("shardmap: lock %s: %w", name, err)
	}
	rctx, stop := context.WithCancel(context.Background())
	s.mu.Lock()
	s.held[name] = heldLock{token: token, stop: stop}
	s.mu.Unlock()
	go s.refresh(rctx, key, token)
	return true, nil
}

func (s *CertStorage) refresh(ctx context.Context, key, token string) {
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = refreshScript.Exec(ctx, s.c, []string{key}, []string{token, strconv.FormatInt(s.ttl.Milliseconds(), 10)}).Error()
		}
	}
}

// Unlock releases name if this storage holds it.
func (s *CertStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("shardmap: unlock %s: not held", name)
	}
	h.stop()
	if err := unlockScript.Exec(ctx, s.c, []string{s.prefix + "lock:" + name}, []string{h.token}).Error(); err != nil {
		return fmt.Errorf("shardmap: unlock %s: %w", name, err)
	}
	return nil
}
