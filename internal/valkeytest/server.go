package valkeytest

import (
	"errors"
	"fmt"
	"github.com/edgecache/edgecache/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds how long a server may take to answer PING after it
// is started.
const ReadyTimeout = 10 * time.Second

// ErrNoServer is returned by Binary when neither valkey-server nor
// redis-server is installed.
var ErrNoServer = errors.New("valkeytest: neither valkey-server nor redis-server on PATH; run `make test`, which installs redis-server")

// Binary returns the path of valkey-server or, failing that, redis-server,
// looked up on PATH and then in the usual install directories.
func Binary() (path string, err error) {
	return find("valkey-server", "redis-server")
}

// searchDirs are where Binary looks after PATH.
var searchDirs = []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}

func find(names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, name := range names {
		for _, dir := range searchDirs {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", ErrNoServer
}

// binary returns the server binary, or ends the test: a failure under
// CI=true, a skip elsewhere.
func binary(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		testutil.Missing(tb, "%v", err)
	}
	return bin
}

// Option changes how servers are started.
type Option func(*options)

type options struct {
	args             []string
	tls              *CA
	password         string
	sentinelPassword string
}

// WithArgs adds command-line arguments to every data server started, for
// example WithArgs("--maxmemory", "64mb"). They come after the defaults and
// so override them.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Server is one running valkey-server (or redis-server) process.
type Server struct {
	Addr string // "127.0.0.1:Port"
	Port int

	ca       *CA    // TLS only, when set
	password string // of the default user, sent by Do

	bin  string
	dir  string
	log  string
	args []string // as last started, port included

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is a started server and the end of its Wait.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start starts n servers, each on a free 127.0.0.1 port with no
// persistence, and waits until each answers PING. They are killed when the
// test ends.
func Start(tb testing.TB, n int, opts ...Option) []*Server {
	tb.Helper()
	bin := binary(tb)
	o := collect(opts)
	root := tb.TempDir() // before Cleanup below, so removed after the kill
	servers := make([]*Server, 0, n)
	cleanup(tb, func() []*Server { return servers })
	for i := range n {
		s := newServer(tb, bin, filepath.Join(root, fmt.Sprintf("server-%d", i)), o)
		servers = append(servers, s)
		s.start(tb, func(port int) []string { return s.serverArgs(port, o.args) })
	}
	return servers
}

// cleanup registers the kill of every server that list returns, and
// prints their log tails if the test failed.
func cleanup(tb testing.TB, list func() []*Server) {
	tb.Cleanup(func() {
		for _, s := range list() {
			s.Kill()
		}
		if tb.Failed() {
			for _, s := range list() {
				tb.Logf("valkeytest: %s log %s, last lines:\n%s", s.Addr, s.log, s.tail(40))
			}
		}
	})
}

func newServer(tb testing.TB, bin, dir string, o options) *Server {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("valkeytest: %v", err)
	}
	return &Server{bin: bin, dir: dir, log: filepath.Join(dir, "server.log"), ca: o.tls, password: o.password}
}

// serverArgs are the arguments of a data server on port.
func (s *Server) serverArgs(port int, extra []string) []string {
	args := []string{"--port", strconv.Itoa(port)}
	if s.ca != nil {
		args = s.ca.tlsArgs(strconv.Itoa(port))
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password, "--masterauth", s.password)
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--dir", s.dir,
	)
	return append(args, extra...)
}

// start starts s on a free port, choosing another when the port turns out
// to be taken, and ends the test if the server does not come up.
func (s *Server) start(tb testing.TB, args func(port int) []string) {
	tb.Helper()
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s.Port, s.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = args(port)
		if err = s.launch(); err == nil {
			return
		}
		// Most likely another process took the port between our probe
		// and the server's bind: try another.
	}
	tb.Fatalf("valkeytest: starting %s: %v\nlog %s, last lines:\n%s", s.bin, err, s.log, s.tail(40))
}

// Restart starts s again, on the same port and with the same arguments,
// killing it first if it runs, and waits until it answers PING. Without
// persistence it comes back empty (a Cluster node keeps its identity in
// nodes.conf).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill()
	deadline := time.Now().Add(ReadyTimeout)
	for {
		err := s.launch()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("valkeytest: restarting %s: %v\nlog %s, last lines:\n%s", s.Addr, err, s.log, s.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	errExited  = errors.New("server exited")
	errForeign = errors.New("another process answers on the port")
)

// launch starts the process with s.args and waits until it answers.
func (s *Server) launch() error {
	f, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== valkeytest %s: %s %s\n", time.Now().Format(time.RFC3339Nano), s.bin, strings.Join(s.args, " "))
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := startProcess(cmd); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(p); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady waits until the server of p answers PING on s.Addr.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if p.exited() {
			return fmt.Errorf("%w: %s", errExited, p.cmd.ProcessState)
		}
		if pong, err := s.Do("PING"); err == nil && pong == "PONG" {
			// Make sure it is ours, not a server that won the port.
			info, err := s.Do("INFO", "server")
			if err != nil {
				return err
			}
			if infoField(info, "process_id") != strconv.Itoa(p.cmd.Process.Pid) {
				return errForeign
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING on %s within %v", s.Addr, ReadyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// running returns the process of s, or nil.
func (s *Server) running() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return nil
	}
	return s.proc
}

// Running reports whether the server process is alive (it may be frozen).
func (s *Server) Running() bool { return s.running() != nil }

// Pid returns the process id of the server, or 0 when it is not running.
func (s *Server) Pid() int {
	if p := s.running(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Kill kills the server with SIGKILL, like a crash, and waits until it is
// gone. It does nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop shuts the server down with SIGTERM, as an operator would, and waits
// until it is gone (SIGKILL after ReadyTimeout).
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen server must run to exit
	select {
	case <-p.done:
	case <-time.After(ReadyTimeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Freeze suspends the server with SIGSTOP: its port stays open and accepts
// connections, but nothing answers, like a hung host. Thaw resumes it.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server with SIGCONT.
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	if p := s.running(); p != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// tail returns the last n lines of the server's log.
func (s *Server) tail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
