package h2

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/testutil"
)

// h2specModule is the conformance suite, pinned; `go install` builds it
// from the module proxy (and the module cache after the first time).
const h2specModule = "github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// TestH2Spec runs h2spec's whole suite (RFC 7540/9113 and HPACK) against
// the server: every test must pass. net/http's server, run beside it for
// the log, fails a few (connection-specific fields, SETTINGS checks).
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes about 20s")
	}
	bin := installH2Spec(t)
	body := bytes.Repeat([]byte("h"), 1024)
	p := newPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(body)
	}), nil)
	ours := runH2Spec(t, bin, p.addr)
	ref := runH2Spec(t, bin, p.ref.URL)
	t.Logf("h2spec: ours %s; net/http's %s", ours[0], ref[0])
	if ours[4] != "0" || ours[2] != ours[1] {
		t.Fatalf("h2spec: %s\n%s", ours[0], failures(ours[5]))
	}
}

func installH2Spec(t *testing.T) string {
	dir := filepath.Join(os.TempDir(), "edgecache-"+strings.ReplaceAll(filepath.Base(h2specModule), "+", "_"))
	bin := filepath.Join(dir, "h2spec")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", h2specModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		testutil.Missing(t, "h2spec: go install %s: %v\n%s", h2specModule, err, out)
	}
	return bin
}

// runH2Spec returns the summary's matches and the whole output last.
func runH2Spec(t *testing.T, bin, url string) []string {
	host, port, _ := strings.Cut(strings.TrimPrefix(url, "https://"), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-t", "-k", "-o", "5").CombinedOutput()
	m := h2specSummary.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("h2spec against %s printed no summary:\n%s", url, out)
	}
	return append(m, string(out))
}

// failures keeps the lines of the failed tests and what they expected.
func failures(out string) string {
	var b strings.Builder
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "×") {
			for _, x := range lines[i:min(i+6, len(lines))] {
				b.WriteString(x + "\n")
			}
		}
	}
	return b.String()
}
