// Package testutil holds what edgecache's tests share and no program may
// use: free loopback addresses, and "this tool must exist", which fails a
// test under CI=true and skips it elsewhere, so that CI can never pass by
// skipping what it did not install; a scripted origin (Origin), real HTTP
// on loopback, whose answers a test writes per path and which records
// what reaches it; and a clock a test advances (Clock) to make cached
// entries stale without sleeping.
package testutil

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// InCI reports whether the tests run in CI (CI=true), where a missing tool
// is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test for want of something the machine lacks: a
// failure under CI=true, a skip elsewhere. msg says what is missing and
// what installs it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("%s", msg)
	}
	tb.Skipf("%s", msg)
}

// Tool returns the path of the first of names found on PATH, or ends the
// test through Missing; install says what installs it (for the message).
func Tool(tb testing.TB, install string, names ...string) string {
	tb.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(tb, "not on PATH: %s (%s)", strings.Join(names, " or "), install)
	return ""
}

// FreeAddr returns a loopback TCP address nothing listened on a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FreePorts returns n distinct free loopback ports (held open together
// while chosen, so they differ).
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// processLifetime are goroutines meant to live as long as the test binary:
// valkeytest's spawner keeps the thread whose death kills the servers it
// started (PR_SET_PDEATHSIG).
//
// valkey-go's cluster client closes the connections a topology refresh
// replaced 5 s later, from a goroutine of its own that outlives Close (a
// fixed sleep in (*clusterClient)._refresh, not a loop): it ends by itself,
// and waiting for it would add 5 s to every package that uses a cluster.
var processLifetime = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/edgecache/edgecache/internal/valkeytest.startProcess.func1.1"),
	goleak.IgnoreAnyFunction("github.com/valkey-io/valkey-go.(*clusterClient)._refresh.func2"),
}

// VerifyNoLeaks runs the package's tests (from TestMain) and fails them if
// a goroutine outlives them: a leaked client, timer loop or fill shows up
// here, not in production. opts ignore more, for a package that must.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, append(processLifetime, opts...)...)
}

// ParseDir parses the non-test Go files of dir, for tests that read the
// project's own source (the shape of gateway/, the metric names of
// internal/metrics).
func ParseDir(tb testing.TB, dir string) (*token.FileSet, []*ast.File) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		parsed = append(parsed, af)
	}
	return fset, parsed
}
