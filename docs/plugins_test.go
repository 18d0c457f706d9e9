package docs

import (
	"bytes"
	"context"
	"fmt"
	"github.com/edgecache/edgecache/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A guide step is a fenced block of plugins.md preceded by a marker:
//
//	<!-- guide:sh LANG -->          commands, run in order in one shell
//	<!-- guide:file LANG PATH -->   a file written at PATH (relative to the shell's folder then)
//	<!-- guide:output LANG -->      lines that the commands so far must have printed
//
// LANG is a language of the guide, or "gateway" for the steps that every
// language's plugin goes through afterwards.
type guideStep struct {
	kind, lang, path string
	body             string
	line             int
}

var guideMarker = regexp.MustCompile(`^<!-- guide:(sh|file|output) ([a-z]+)(?: (\S+))? -->$`)

func guideSteps(t *testing.T) []guideStep {
	t.Helper()
	b, err := os.ReadFile("plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var steps []guideStep
	for i := 0; i < len(lines); i++ {
		m := guideMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("plugins.md:%d: a guide marker must be followed by a fenced block", i+1)
		}
		var body []string
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
			body = append(body, lines[j])
		}
		if j == len(lines) {
			t.Fatalf("plugins.md:%d: unterminated block", i+2)
		}
		steps = append(steps, guideStep{kind: m[1], lang: m[2], path: m[3], body: strings.Join(body, "\n") + "\n", line: i + 1})
		i = j
	}
	return steps
}

// guideLanguages are the languages the guide must cover, in its order.
var guideLanguages = []string{"go", "c", "rust", "assemblyscript"}

// TestPluginGuide runs docs/plugins.md: for each language whose toolchain
// is installed here, from an empty folder, every command and file of that
// language's section and then of "Use it in the gateway", in one shell,
// checking the output blocks. Go is always there; the other languages are
// skipped, with the reason, when their toolchain is missing.
func TestPluginGuide(t *testing.T) {
	steps := guideSteps(t)
	for _, lang := range append(slices.Clone(guideLanguages), "gateway") {
		n := 0
		for _, s := range steps {
			if s.lang == lang && s.kind == "sh" {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("plugins.md has no commands for %s", lang)
		}
	}
	if testing.Short() {
		t.Skip("builds plugins in every language")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, c := range [][]string{
		{"build", "-o", filepath.Join(bin, "edgecache"), "./cmd/edgecache"},
		{"build", "-o", filepath.Join(bin, "demo-origin"), "./examples/origin/cmd/demo-origin"},
	} {
		cmd := exec.Command("go", c...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	for _, lang := range guideLanguages {
		t.Run(lang, func(t *testing.T) {
			path := toolchain(t, lang)
			runGuide(t, steps, lang, root, bin+string(os.PathListSeparator)+path)
		})
	}
}

// toolchain returns the PATH to build lang's plugin with, or skips the test
// when the toolchain is missing.
func toolchain(t *testing.T, lang string) string {
	t.Helper()
	path := os.Getenv("PATH")
	// lookPath finds name on path (exec.Command would search the test's
	// own PATH).
	lookPath := func(name string) string {
		for _, d := range filepath.SplitList(path) {
			if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return filepath.Join(d, name)
			}
		}
		return name
	}
	probe := func(name string, args ...string) error {
		cmd := exec.Command(lookPath(name), args...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	var err error
	switch lang {
	case "go":
		return path
	case "c":
		dir := t.TempDir()
		src := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(src, []byte("int probe(void) { return 0; }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err = probe("clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-o", filepath.Join(dir, "probe.wasm"), src)
	case "rust":
		// Debian's cargo and rustc carry the wasm32 std; a rustup
		// toolchain earlier on PATH may not.
		if _, e := os.Stat("/usr/bin/cargo"); e == nil {
			path = "/usr/bin" + string(os.PathListSeparator) + path
		}
		if err = probe("cargo", "--version"); err == nil {
			var out []byte
			cmd := exec.Command(lookPath("rustc"), "--print", "target-libdir", "--target", "wasm32-unknown-unknown")
			cmd.Env = append(os.Environ(), "PATH="+path)
			if out, err = cmd.Output(); err == nil {
				if libs, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "libstd-*")); len(libs) == 0 {
					err = fmt.Errorf("no std for wasm32-unknown-unknown in %s", bytes.TrimSpace(out))
				}
			}
		}
	case "assemblyscript":
		if err = probe("node", "--version"); err == nil {
			err = probe("npm", "--version")
		}
	}
	if err != nil {
		testutil.Missing(t, "no %s toolchain here: %v (`make test` installs every toolchain)", lang, err)
	}
	return path
}

// runGuide writes lang's steps and the gateway's as one bash script, runs
// it from an empty folder and checks the output blocks.
func runGuide(t *testing.T, steps []guideStep, lang, root, path string) {
	t.Helper()
	// The gateway section's ports, moved to free ones.
	ports := map[string]string{}
	for _, p := range []string{"8080", "9000", "9090"} {
		ports["127.0.0.1:"+p] = testutil.FreeAddr(t)
	}
	move := func(s string) string {
		for from, to := range ports {
			s = strings.ReplaceAll(s, from, to)
		}
		return s
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	var want []string
	for _, s := range steps {
		if s.lang != lang && s.lang != "gateway" {
			continue
		}
		body := s.body
		if s.lang == "gateway" {
			body = move(body)
		}
		switch s.kind {
		case "sh":
			fmt.Fprintf(&script, "# plugins.md:%d\n%s", s.line, body)
		case "file":
			fmt.Fprintf(&script, "# plugins.md:%d\nmkdir -p \"$(dirname %q)\"\ncat > %q <<'GUIDE_EOF'\n%sGUIDE_EOF\n", s.line, s.path, s.path, body)
		case "output":
			want = append(want, strings.Split(strings.TrimSpace(body), "\n")...)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EDGECACHE="+root, "PATH="+path, "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	// Its own process group: the gateway and origin it starts in the
	// background die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background process left running (the script failed before its
	// kill) holds the output pipe open: stop waiting for it once the
	// shell has exited, and kill the group.
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the steps left running; usually nothing
	}
	if err != nil {
		t.Fatalf("the %s steps of plugins.md failed: %v\nscript:\n%s\noutput:\n%s", lang, err, script.String(), out.String())
	}
	got := strings.Split(out.String(), "\n")
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.TrimRight(g, "\r ") == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the %s steps did not print %q\noutput:\n%s", lang, w, out.String())
		}
	}
}
