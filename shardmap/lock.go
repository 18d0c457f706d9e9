package shardmap

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// LockPrefix starts the keys of fill locks.
const LockPrefix = "edgecache:lock:"

// unlockSource deletes a lock only if it still holds our token, so that
// a holder whose lock expired cannot free the next holder's.
const unlockSource = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

var unlockScript = valkey.NewLuaScript(unlockSource)

// unlockSHA is unlockScript's SHA1, for EVALSHA in a pipeline: Valkey
// hashes an EVAL's body on every call. A node that does not know the
// script yet answers NOSCRIPT; the lock is then freed by Release, whose
// Exec loads it.
var unlockSHA = func() string {
	sum := sha1.Sum([]byte(unlockSource))
	return hex.EncodeToString(sum[:])
}()

// Lock is a fill lock held on a shard (TryLock). Release frees it; a
// holder that stores on the same shard frees it with its Set instead
// (SetReleasing), in the same round trip.
type Lock struct {
	s          *Shard
	key, token string
	released   atomic.Bool
	// sureUntil is when the lock may stop being ours for all we know:
	// half its ttl after TryLock sent the SET NX (see delCmd).
	sureUntil time.Time
}

// delCmd is the command that frees l: a plain DEL while the lock is
// surely still ours, else the token-checking script. The SET NX that
// took it reached Valkey after TryLock read the clock, so the key cannot
// expire before that reading plus its ttl (Redlock's validity time); a
// DEL sent before half of that has passed arrives in time unless it is
// delayed by more than the other half (a lock ttl is the route's
// lock_wait, 2 s by default), or the server's clock is stepped forward.
// Either would free another holder's lock, which costs a second origin
// fetch of that key, never a wrong entry. The script costs Valkey about
// ten times a DEL (Lua, then GET and DEL), on every miss that fills.
func (l *Lock) delCmd(c valkey.Client) valkey.Completed {
	if l.sure() {
		return c.B().Del().Key(l.key).Build()
	}
	return c.B().Evalsha().Sha1(unlockSHA).Numkeys(1).Key(l.key).Arg(l.token).Build()
}

// sure reports whether the lock is surely still ours (delCmd).
func (l *Lock) sure() bool { return time.Now().Before(l.sureUntil) }

// Shard is the shard the lock is held on.
func (l *Lock) Shard() *Shard { return l.s }

// Release frees the lock if it is still ours (a DEL or the script, as
// delCmd says); once (later calls, and calls after a SetReleasing that
// freed it, do nothing).
func (l *Lock) Release() {
	if l.released.Swap(true) {
		return
	}
	_ = l.s.run(context.Background(), "unlock", func(b *clientBox) error {
		if l.sure() {
			return b.c.Do(context.Background(), b.c.B().Del().Key(l.key).Build()).Error()
		}
		return unlockScript.Exec(context.Background(), b.c, []string{l.key}, []string{l.token}).Error()
	})
}

// TryLock takes the lock name on this shard for at most ttl, without
// waiting: SET NX PX with a random token. It reports false when another
// holder has it.
func (s *Shard) TryLock(ctx context.Context, name string, ttl time.Duration) (lock *Lock, ok bool, err error) {
	var tok [12]byte
	_, _ = rand.Read(tok[:])
	l := &Lock{s: s, key: LockPrefix + name, token: hex.EncodeToString(tok[:]), sureUntil: time.Now().Add(ttl / 2)}
	err = s.run(ctx, "lock", func(b *clientBox) error {
		c := b.c
		err := c.Do(ctx, c.B().Set().Key(l.key).Value(l.token).Nx().PxMilliseconds(max(ttl.Milliseconds(), 1)).Build()).Error()
		if valkey.IsValkeyNil(err) {
			return nil // held by another
		}
		ok = err == nil
		return err
	})
	if !ok || err != nil {
		return nil, false, err
	}
	return l, true, nil
}

// SetReleasing is Set on l's shard followed, in the same pipeline, by
// the release of l: a fill that holds its key's lock stores the entry and
// frees the lock with one write and one read, where Set then Release
// take two round trips (a release past the lock's validity, delCmd, on a
// node that does not know the script yet takes them anyway: NOSCRIPT).
// Valkey runs a connection's commands in order, so the lock is freed only
// after the entry is stored, as before. A Cluster
// sends each slot's commands to its node, in no order between nodes, so
// there it is Set then Release. A pipelined release that failed is
// retried by Release before it returns.
func (l *Lock) SetReleasing(ctx context.Context, key string, val []byte, ttl time.Duration, tags ...string) error {
	if l.s.Kind() == "cluster" {
		err := l.s.Set(ctx, key, val, ttl, tags...)
		l.Release()
		return err
	}
	if l.released.Load() {
		return l.s.Set(ctx, key, val, ttl, tags...)
	}
	freed := false
	err := l.s.run(ctx, "set", func(b *clientBox) error {
		c := b.c
		cmds := setCmds(c, key, val, ttl, tags, 1)
		cmds = append(cmds, l.delCmd(c))
		res := c.DoMulti(ctx, cmds...)
		freed = res[len(res)-1].Error() == nil
		return firstErr(res[:len(res)-1])
	})
	if freed {
		l.released.Store(true)
	} else {
		l.Release() // NOSCRIPT (Exec loads the script), or a failed call
	}
	return err
}
