package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFillMemoryBounded (issue 12, finding 4) starts the real binary in
// front of an origin that sends 8.5 MiB chunked bodies (no
// Content-Length, just above the default max_body_bytes) and has 40
// clients read them slowly, on distinct keys, at once. The gateway's
// peak RSS (VmHWM) must stay below limits.fill_buffer_bytes + 64 MiB.
// Before the bound, each such miss held about 2 × max_body_bytes while
// its client drained: 22 MB → 706 MB.
func TestFillMemoryBounded(t *testing.T) {
	const (
		clients = 40
		bodyLen = 8<<20 + 512<<10 // 8.5 MiB
		budget  = 16 << 20        // limits.fill_buffer_bytes for the test: small, so that the bound bites
		slack   = 64 << 20
	)
	chunk := []byte(strings.Repeat("x", 64<<10))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/octet-stream")
		fl := w.(http.Flusher)
		for sent := 0; sent < bodyLen; sent += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), bodyLen-sent)]); err != nil {
				return
			}
			fl.Flush() // chunked: no Content-Length
		}
	}))
	defer origin.Close()

	dir := t.TempDir()
	bin := filepath.Join(dir, "edgecache")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cfg := fmt.Sprintf("server:\n  listen: %s\nadmin:\n  listen: %s\nroutes:\n  - name: big\n    origin: %s\nlimits:\n  fill_buffer_bytes: %d\n",
		addr, freeAddr(t), origin.URL, budget)
	cfgPath := filepath.Join(dir, "edgecache.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "EDGECACHE_ADMIN_TOKEN=memory-test-token")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway log:\n%s", log.String())
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not start listening")
		}
	}
	startRSS := procStatus(t, cmd.Process.Pid, "VmRSS")

	var wg sync.WaitGroup
	var peak atomic.Int64
	done := make(chan struct{})
	go func() { // sample RSS while the clients read
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				if v := procStatus(t, cmd.Process.Pid, "VmRSS"); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() { errs <- slowRead(addr, fmt.Sprintf("/big/%d", i), bodyLen) })
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	t.Logf("gateway RSS: %d MiB at start, %d MiB peak sampled, VmHWM %d MiB; bound %d MiB (fill_buffer_bytes %d MiB + 64 MiB); %d clients × %.1f MiB",
		startRSS>>20, peak.Load()>>20, hwm>>20, (budget+slack)>>20, budget>>20, clients, float64(bodyLen)/(1<<20))
	if hwm >= budget+slack {
		t.Fatalf("VmHWM %d MiB, want below %d MiB", hwm>>20, (budget+slack)>>20)
	}
}

// slowRead GETs path over its own connection and reads the body at about
// 2 MiB/s, checking its length.
func slowRead(addr, path string, want int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(90 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: mem.test\r\nConnection: close\r\n\r\n", path); err != nil {
		return err
	}
	// A small receive buffer keeps the kernel from draining the gateway
	// on the client's behalf.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16<<10), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	n := 0
	for {
		k, err := resp.Body.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: after %d bytes: %w", path, n, err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if resp.StatusCode != 200 || n != want {
		return fmt.Errorf("%s: status %d, %d bytes, want %d (%s)", path, resp.StatusCode, n, want, resp.Header.Get("Cache-Status"))
	}
	return nil
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the gateway's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
