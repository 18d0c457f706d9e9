package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long Watch waits for a burst of file events to
// settle before it reports a change.
const DefaultDebounce = 250 * time.Millisecond

// Watch calls onChange whenever the content of the file at path changes,
// until ctx is done. It watches the file's directory, not the file, so it
// survives editors that write a new file and rename it over the old one,
// and Kubernetes ConfigMap volumes that swap a symlink (..data): every
// event in the directory is debounced, then the file is read through its
// symlinks and its content compared with the last seen. A burst of events
// yields one call; an unchanged file yields none.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func()) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return err
	}
	last := digest(path)
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(debounce)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				timer.Reset(debounce) // a lost event: check the file anyway
			case <-timer.C:
				if d := digest(path); d != nil && !bytes.Equal(d, last) {
					last = d
					onChange()
				}
			}
		}
	}()
	return nil
}

// digest is the SHA-256 of the file's content, or nil if it cannot be read
// (mid-rename, say): the next event checks again.
func digest(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
