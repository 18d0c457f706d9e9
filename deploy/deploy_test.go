package deploy

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/edgecache/edgecache/internal/testutil"
	"go/ast"
	"go/token"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/cli"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// exportedMetrics are the Prometheus series the gateway exports that the
// dashboard may query, with their labels. It is the contract between
// deploy/grafana/edgecache.json and the gateway: the gateway's metrics test
// must keep it in sync, and TestMetricsDeclared checks each name against
// the constants of internal/metrics when that package is present.
var exportedMetrics = map[string][]string{
	"edgecache_requests_total":                         {"route", "method", "code", "cache"},
	"edgecache_cache_hits_total":                       {"tier"},
	"edgecache_origin_request_duration_seconds_bucket": {"route", "le"},
	"edgecache_shard_command_duration_seconds_bucket":  {"shard", "command", "le"},
	"edgecache_shard_errors_total":                     {"shard"},
	"edgecache_shard_circuit_open":                     {"shard"},
	"edgecache_plugin_call_duration_seconds_bucket":    {"plugin", "hook", "le"},
	"edgecache_plugin_faults_total":                    {"plugin", "hook"},
	"edgecache_coalesced_waiters_total":                {},
	"edgecache_reloads_total":                          {"result"},
	"edgecache_generation":                             {},
	"edgecache_embedded_store_bytes":                   {},
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// ---------------------------------------------------------------- YAML

// TestYAMLParses parses every YAML file under deploy/, each document of a
// multi-document file.
func TestYAMLParses(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"otel-collector.yaml", "kubernetes/kustomization.yaml", "kubernetes/edgecache.yaml", "kubernetes/valkey.yaml"} {
		if !slices.Contains(files, filepath.FromSlash(want)) {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	for _, f := range files {
		if docs := yamlDocs(t, f); len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
	}
}

// yamlDocs returns the documents of a YAML file, decoded into maps.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// get walks a decoded YAML or JSON tree: keys index maps, numbers lists.
func get(v any, path ...string) any {
	for _, p := range path {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

func list(v any, path ...string) []any { l, _ := get(v, path...).([]any); return l }

// ---------------------------------------------------------- Kubernetes

type manifests struct {
	byKind map[string][]map[string]any
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{byKind: map[string][]map[string]any{}}
	kust := yamlDocs(t, "kubernetes/kustomization.yaml")[0]
	for _, r := range list(kust, "resources") {
		f := filepath.Join("kubernetes", r.(string))
		for i, d := range yamlDocs(t, f) {
			kind, name := str(d, "kind"), str(d, "metadata", "name")
			if str(d, "apiVersion") == "" || kind == "" || name == "" {
				t.Fatalf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			}
			m.byKind[kind] = append(m.byKind[kind], d)
		}
	}
	return m
}

func (m manifests) find(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	for _, d := range m.byKind[kind] {
		if str(d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %q in the kustomization's resources", kind, name)
	return nil
}

// TestKubernetes checks the manifests that kustomization.yaml lists: the
// kinds, and everything that must agree between them — the ConfigMap's
// gateway config (which must pass config check) and the Deployment's
// mount, args, ports and probes; the shard map and the Valkey StatefulSet
// and its headless Service; the Services' target ports; the
// NetworkPolicy's selectors.
func TestKubernetes(t *testing.T) {
	m := loadManifests(t)
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "StatefulSet", "NetworkPolicy", "PodDisruptionBudget"} {
		if len(m.byKind[kind]) == 0 {
			t.Errorf("no %s", kind)
		}
	}

	dep := m.find(t, "Deployment", "edgecache")
	pod := get(dep, "spec", "template", "spec")
	podLabels := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	if !matches(get(dep, "spec", "selector", "matchLabels"), podLabels) {
		t.Error("Deployment: selector does not match the pod labels")
	}
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("Deployment: pods must run as non-root")
	}
	c := list(pod, "containers")[0]
	if get(c, "securityContext", "allowPrivilegeEscalation") != false || str(c, "securityContext", "capabilities", "drop", "0") != "ALL" {
		t.Error("Deployment: the container must drop every capability and forbid privilege escalation")
	}

	// The config: a ConfigMap mounted as a directory, so that updates
	// reach the pod (a subPath mount never changes), at the path --config
	// names.
	args := toStrings(list(c, "args"))
	i := slices.Index(args, "--config")
	if len(args) == 0 || args[0] != "serve" || i < 0 || i+1 >= len(args) {
		t.Fatalf("Deployment: args %q, want serve --config FILE", args)
	}
	cfgPath := args[i+1]
	var cmName string
	for _, vm := range list(c, "volumeMounts") {
		if str(vm, "mountPath") != filepath.Dir(cfgPath) {
			continue
		}
		if get(vm, "subPath") != nil {
			t.Error("Deployment: the config volume must not use subPath: subPath mounts never see ConfigMap updates")
		}
		for _, v := range list(pod, "volumes") {
			if str(v, "name") == str(vm, "name") {
				cmName = str(v, "configMap", "name")
			}
		}
	}
	if cmName == "" {
		t.Fatalf("Deployment: no ConfigMap volume mounted at %s", filepath.Dir(cfgPath))
	}
	cm := m.find(t, "ConfigMap", cmName)
	doc := str(cm, "data", filepath.Base(cfgPath))
	if doc == "" {
		t.Fatalf("ConfigMap %s has no key %s", cmName, filepath.Base(cfgPath))
	}
	cfgFile := filepath.Join(t.TempDir(), filepath.Base(cfgPath))
	if err := os.WriteFile(cfgFile, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := cli.Main(context.Background(), []string{"config", "check", cfgFile}, &out, &out); code != 0 {
		t.Fatalf("config check of ConfigMap %s: exit %d\n%s", cmName, code, out.String())
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}

	// The admin token comes from a Secret.
	tokenFromSecret := false
	for _, e := range list(c, "env") {
		if str(e, "name") == "EDGECACHE_ADMIN_TOKEN" && str(e, "valueFrom", "secretKeyRef", "name") != "" {
			tokenFromSecret = true
		}
	}
	if !tokenFromSecret {
		t.Error("Deployment: EDGECACHE_ADMIN_TOKEN must come from a Secret (secretKeyRef)")
	}

	// Ports: the container exposes the listeners the config sets, and
	// the probes hit the traffic port.
	ports := map[string]int{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")] = p.(map[string]any)["containerPort"].(int)
	}
	for name, addr := range map[string]string{"http": cfg.Server.Listen, "admin": cfg.Admin.Listen} {
		host, port, _ := net.SplitHostPort(addr)
		if strconv.Itoa(ports[name]) != port {
			t.Errorf("Deployment: container port %q is %d, the config listens on %s", name, ports[name], addr)
		}
		if host != "0.0.0.0" && host != "" && host != "::" {
			t.Errorf("config listens on %s: unreachable from outside the pod", addr)
		}
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("Deployment: %s path %q, want %q", probe, got, path)
		}
		if got := str(c, probe, "httpGet", "port"); got != "http" {
			t.Errorf("Deployment: %s on port %q, want the traffic port (http)", probe, got)
		}
	}

	// Services select the pods and target ports the container has.
	for _, svc := range m.byKind["Service"] {
		name := str(svc, "metadata", "name")
		sel := get(svc, "spec", "selector")
		var target map[string]any
		switch {
		case matches(sel, podLabels):
			target = map[string]any{}
			for n := range ports {
				target[n] = true
			}
		default:
			continue // checked with the StatefulSet below
		}
		for _, p := range list(svc, "spec", "ports") {
			if target[str(p, "targetPort")] == nil {
				t.Errorf("Service %s: targetPort %q is not a container port", name, str(p, "targetPort"))
			}
		}
	}

	// Valkey: one StatefulSet pod per shard, named by the headless
	// Service, with valkey.conf from a ConfigMap equal to deploy/valkey.conf.
	sts := m.find(t, "StatefulSet", "valkey")
	svcName := str(sts, "spec", "serviceName")
	svc := m.find(t, "Service", svcName)
	if str(svc, "spec", "clusterIP") != "None" {
		t.Errorf("Service %s must be headless (clusterIP: None) for per-pod DNS names", svcName)
	}
	vLabels := get(sts, "spec", "template", "metadata", "labels").(map[string]any)
	if !matches(get(svc, "spec", "selector"), vLabels) || !matches(get(sts, "spec", "selector", "matchLabels"), vLabels) {
		t.Errorf("StatefulSet valkey: selectors do not match its pod labels")
	}
	replicas, _ := get(sts, "spec", "replicas").(int)
	if replicas != len(cfg.Shards) {
		t.Errorf("StatefulSet valkey has %d replicas, the shard map %d shards", replicas, len(cfg.Shards))
	}
	vc := list(sts, "spec", "template", "spec", "containers")[0]
	vport := list(vc, "ports")[0].(map[string]any)["containerPort"].(int)
	for i, s := range cfg.Shards {
		want := fmt.Sprintf("%s-%d.%s:%d", str(sts, "metadata", "name"), i, svcName, vport)
		if s.Addr != want {
			t.Errorf("shards[%d].addr = %q, want the StatefulSet pod %q", i, s.Addr, want)
		}
	}
	cmd := toStrings(list(vc, "command"))
	var vcm string
	for _, vm := range list(vc, "volumeMounts") {
		for _, v := range list(sts, "spec", "template", "spec", "volumes") {
			if str(v, "name") == str(vm, "name") && str(v, "configMap", "name") != "" && len(cmd) > 1 && filepath.Dir(cmd[1]) == str(vm, "mountPath") {
				vcm = str(v, "configMap", "name")
			}
		}
	}
	if vcm == "" {
		t.Fatalf("StatefulSet valkey: command %q reads no file from a ConfigMap volume", cmd)
	}
	conf := str(m.find(t, "ConfigMap", vcm), "data", filepath.Base(cmd[1]))
	base, err := os.ReadFile("valkey.conf")
	if err != nil {
		t.Fatal(err)
	}
	if conf != string(base) {
		t.Errorf("ConfigMap %s: %s differs from deploy/valkey.conf; keep them equal (override on the command line)", vcm, filepath.Base(cmd[1]))
	}
	t.Run("valkey command line", func(t *testing.T) {
		// The StatefulSet's command, run here: the ConfigMap's file and
		// its overrides start a real server with the cache settings.
		// Loopback only, whatever the manifest binds.
		startValkey(t, conf, append(cmd[2:], "--bind", "127.0.0.1"), map[string]string{
			"maxmemory-policy": "allkeys-lru", "save": "", "appendonly": "no",
			"maxmemory": strconv.Itoa(768 << 20),
		})
	})

	// Only the gateway pods reach the shards.
	np := m.find(t, "NetworkPolicy", "valkey")
	if !matches(get(np, "spec", "podSelector", "matchLabels"), vLabels) {
		t.Error("NetworkPolicy valkey does not select the Valkey pods")
	}
	if !matches(get(np, "spec", "ingress", "0", "from", "0", "podSelector", "matchLabels"), podLabels) {
		t.Error("NetworkPolicy valkey does not admit the gateway pods")
	}

	// Plugins precompiled into the image are found where the config looks.
	if want := imageCacheDir(t); cfg.WASM.CacheDir != want {
		t.Errorf("ConfigMap %s: wasm.cache_dir %q, the image's compilation cache is %q", cmName, cfg.WASM.CacheDir, want)
	}

	t.Run("serve with the Deployment's args", func(t *testing.T) {
		checkServe(t, replaceArg(args, cfgPath, cfgFile))
	})
}

// matches reports whether every label of selector is in labels.
func matches(selector any, labels map[string]any) bool {
	sel, ok := selector.(map[string]any)
	if !ok || len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func toStrings(l []any) []string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = fmt.Sprint(v)
	}
	return s
}

func replaceArg(args []string, old, new string) []string {
	out := slices.Clone(args)
	for i := range out {
		if out[i] == old {
			out[i] = new
		}
	}
	return out
}

// checkServe runs `edgecache` with args in-process, on loopback ports
// whatever the config says, with a context already cancelled: the flags
// parse, the config loads, the gateway starts and shuts down.
func checkServe(t *testing.T, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %q: want serve ...", args)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	args = append(slices.Clone(args), "--listen", "127.0.0.1:0", "--set", "admin.listen=127.0.0.1:0",
		"--set", "wasm.cache_dir="+t.TempDir())
	var out bytes.Buffer
	if code := cli.Main(ctx, args, &out, &out); code != 0 {
		t.Errorf("edgecache %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	}
}

// ------------------------------------------------------------- Valkey

// TestValkeyConf starts a real server with deploy/valkey.conf and checks
// that it runs as a cache: the eviction policy, no persistence, the
// tracking table bound, lazy frees.
func TestValkeyConf(t *testing.T) {
	b, err := os.ReadFile("valkey.conf")
	if err != nil {
		t.Fatal(err)
	}
	startValkey(t, string(b), nil, map[string]string{
		"maxmemory-policy":        "allkeys-lru",
		"maxmemory":               strconv.Itoa(2 << 30),
		"save":                    "",
		"appendonly":              "no",
		"tracking-table-max-keys": "1000000",
		"lazyfree-lazy-eviction":  "yes",
		"lazyfree-lazy-expire":    "yes",
		"protected-mode":          "yes",
	})
}

// startValkey runs valkey-server (or redis-server) on the config text conf
// with the extra arguments, on a free loopback port, checks each CONFIG GET
// against want, and stops it.
func startValkey(t *testing.T, conf string, extra []string, want map[string]string) {
	t.Helper()
	bin, err := valkeytest.Binary()
	if err != nil {
		testutil.Missing(t, "%v", err)
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "valkey.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := append([]string{confPath}, extra...)
	args = append(args, "--port", strconv.Itoa(port), "--dir", dir, "--daemonize", "no", "--logfile", "")
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill() // it may have exited already
		<-exited
		if t.Failed() {
			t.Logf("%s %s:\n%s", bin, strings.Join(args, " "), log.String())
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := resp(addr, "PING"); err == nil && len(r) == 1 && r[0] == "PONG" {
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start", bin)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer PING", bin)
		}
	}
	for k, v := range want {
		got, err := resp(addr, "CONFIG", "GET", k)
		if err != nil || len(got) != 2 || got[1] != v {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", k, got, err, v)
		}
	}
}

// resp sends one command and returns the reply: a simple or bulk string
// as one element, an array of them flattened.
func resp(addr string, args ...string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var read func() ([]string, error)
	read = func() ([]string, error) {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			return nil, errors.New("empty reply")
		}
		switch line[0] {
		case '+':
			return []string{line[1:]}, nil
		case '-':
			return nil, errors.New(line[1:])
		case ':':
			return []string{line[1:]}, nil
		case '$':
			n, _ := strconv.Atoi(line[1:])
			if n < 0 {
				return []string{""}, nil
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			return []string{string(buf[:n])}, nil
		case '*':
			n, _ := strconv.Atoi(line[1:])
			var out []string
			for range n {
				v, err := read()
				if err != nil {
					return nil, err
				}
				out = append(out, v...)
			}
			return out, nil
		}
		return nil, fmt.Errorf("unexpected reply %q", line)
	}
	return read()
}

// ----------------------------------------------------------- Dockerfile

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

func dockerfile(t *testing.T) [][]instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var pending string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			pending += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		full := strings.TrimSpace(pending + trimmed)
		pending = ""
		cmd, args, _ := strings.Cut(full, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" || len(stages) == 0 {
			stages = append(stages, nil)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

type stage []instruction

// TestDockerfile checks the container build: a Go builder of the version
// go.mod asks for, a static binary built by the very command this test
// runs here, plugins precompiled by `edgecache plugin compile` into the
// cache the runtime stage ships, and a non-root runtime stage whose CMD
// starts the gateway.
func TestDockerfile(t *testing.T) {
	stages := dockerfile(t)
	if len(stages) < 3 { // the global ARGs, the build, the runtime
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	global, build, final := stage(stages[0]), stage(stages[1]), stage(stages[len(stages)-1])

	// The builder's Go is the go.mod version's minor release.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	var goVersion string
	for _, in := range global.find("ARG") {
		if v, ok := strings.CutPrefix(in.args, "GO_VERSION="); ok {
			goVersion = v
		}
	}
	if goLine == nil || goVersion != string(goLine[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", goVersion, goLine[1])
	}
	if from := build.find("FROM"); len(from) != 1 || !strings.HasPrefix(from[0].args, "golang:${GO_VERSION}") || !strings.HasSuffix(from[0].args, " AS build") {
		t.Errorf("build stage: %v, want FROM golang:${GO_VERSION}... AS build", from)
	}

	var buildRun, compileRun string
	for _, in := range build.find("RUN") {
		switch {
		case strings.Contains(in.args, "go build"):
			buildRun = in.args
		case strings.Contains(in.args, "plugin compile"):
			compileRun = in.args
		}
	}
	if !strings.Contains(buildRun, "CGO_ENABLED=0") || !strings.Contains(buildRun, "./cmd/edgecache") {
		t.Errorf("build stage: %q, want a CGO_ENABLED=0 go build of ./cmd/edgecache", buildRun)
	}
	if !regexp.MustCompile(`plugin compile --cache-dir \S+`).MatchString(compileRun) {
		t.Errorf("build stage: no `edgecache plugin compile --cache-dir DIR` step")
	}

	// The runtime stage: distroless or scratch, non-root, the binary and
	// the compilation cache copied from the build, the gateway as CMD.
	from := final.find("FROM")[0].args
	if !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless/static or scratch", from)
	}
	users := final.find("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage: no USER: it would run as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "0" || u == "root" {
		t.Errorf("runtime stage: USER %s", users[len(users)-1].args)
	}
	copies := strings.Join(func() []string {
		var s []string
		for _, in := range final.find("COPY") {
			s = append(s, in.args)
		}
		return s
	}(), "\n")
	if !strings.Contains(copies, "--from=build /out/edgecache /usr/local/bin/edgecache") || !strings.Contains(copies, "/var/cache/edgecache") {
		t.Errorf("runtime stage copies:\n%s\nwant the binary and the compilation cache", copies)
	}
	var entry, cmdArgs []string
	if e := final.find("ENTRYPOINT"); len(e) == 1 {
		if err := json.Unmarshal([]byte(e[0].args), &entry); err != nil {
			t.Errorf("ENTRYPOINT %s: not a JSON array: %v", e[0].args, err)
		}
	}
	if c := final.find("CMD"); len(c) == 1 {
		if err := json.Unmarshal([]byte(c[0].args), &cmdArgs); err != nil {
			t.Errorf("CMD %s: not a JSON array: %v", c[0].args, err)
		}
	}
	if len(entry) != 1 || entry[0] != "/usr/local/bin/edgecache" || len(cmdArgs) == 0 || cmdArgs[0] != "serve" {
		t.Errorf("runtime stage: ENTRYPOINT %q CMD %q, want the binary and serve", entry, cmdArgs)
	}

	// Run the build stage's commands here, with /out in a temporary
	// directory: the binary must be static.
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := t.TempDir()
	runDockerRun(t, buildRun, out, nil)
	bin := filepath.Join(out, "edgecache")
	checkStatic(t, bin)

	t.Run("plugin compile", func(t *testing.T) {
		var usage bytes.Buffer
		cli.Main(context.Background(), []string{"help"}, &usage, &usage)
		if !strings.Contains(usage.String(), "plugin compile") {
			t.Fatal("`edgecache plugin compile` is missing from the usage; the Dockerfile needs it")
		}
		var pluginsDir string
		for _, in := range build.find("ARG") {
			if v, ok := strings.CutPrefix(in.args, "PLUGINS_DIR="); ok {
				pluginsDir = v
			}
		}
		wasm, _ := filepath.Glob(filepath.Join("..", pluginsDir, "*.wasm"))
		if len(wasm) == 0 {
			t.Fatalf("ARG PLUGINS_DIR=%s holds no .wasm", pluginsDir)
		}
		runDockerRun(t, compileRun, out, []string{"PLUGINS_DIR=" + pluginsDir})
		cached, _ := os.ReadDir(filepath.Join(out, "cache", "wazero"))
		if len(cached) == 0 {
			t.Errorf("plugin compile left nothing in the cache for %d plugins", len(wasm))
		}
	})
}

// imageCacheDir is where the runtime image holds the compilation cache
// that the build stage's `plugin compile --cache-dir` filled.
func imageCacheDir(t *testing.T) string {
	t.Helper()
	stages := dockerfile(t)
	var built string
	for _, in := range stage(stages[1]).find("RUN") {
		if m := regexp.MustCompile(`plugin compile --cache-dir (\S+)`).FindStringSubmatch(in.args); m != nil {
			built = m[1]
		}
	}
	for _, in := range stage(stages[len(stages)-1]).find("COPY") {
		f := strings.Fields(in.args)
		if len(f) < 2 || !slices.Contains(f, "--from=build") {
			continue
		}
		src, dst := strings.TrimSuffix(f[len(f)-2], "/"), strings.TrimSuffix(f[len(f)-1], "/")
		if built != "" && strings.HasPrefix(built, src+"/") {
			return dst + strings.TrimPrefix(built, src)
		}
	}
	t.Fatalf("Dockerfile: the runtime stage copies no compilation cache (built in %q)", built)
	return ""
}

// runDockerRun runs a RUN instruction's shell command from the repository
// root, without its --mount flags and with /out moved to out.
func runDockerRun(t *testing.T, run, out string, env []string) {
	t.Helper()
	for strings.HasPrefix(run, "--") {
		_, run, _ = strings.Cut(run, " ")
		run = strings.TrimSpace(run)
	}
	run = strings.ReplaceAll(run, "/out", out)
	cmd := exec.Command("sh", "-ec", run)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("RUN %s: %v\n%s", run, err, b)
	}
}

// checkStatic fails unless the ELF file at path needs no dynamic loader
// and no shared library.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", path, libs)
	}
}

// -------------------------------------------------------------- systemd

type unit map[string]map[string][]string // section → key → values

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemdUnit checks the unit's hardening and its commands, runs its
// ExecStart command line, and `systemd-analyze verify` when present.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "edgecache.service")
	s := u["Service"]
	if s == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("want [Unit], [Service] and [Install] sections, got %v", u)
	}
	last := func(k string) (string, bool) {
		v, ok := s[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[len(v)-1], true
	}
	for k, want := range map[string]string{
		"ProtectSystem":         "strict",
		"NoNewPrivileges":       "yes",
		"CapabilityBoundingSet": "", // present and empty: no capability at all
		"PrivateTmp":            "yes",
		"Restart":               "on-failure",
	} {
		if got, ok := last(k); !ok || got != want {
			t.Errorf("[Service] %s=%q (set: %v), want %q", k, got, ok, want)
		}
	}
	if v, _ := last("DynamicUser"); v != "yes" {
		if u, _ := last("User"); u == "" || u == "root" {
			t.Error("[Service] wants DynamicUser=yes or a User other than root")
		}
	}
	if n, _ := last("LimitNOFILE"); func() bool { v, err := strconv.Atoi(n); return err != nil || v < 4096 }() {
		t.Errorf("[Service] LimitNOFILE=%q, want a number of at least 4096", n)
	}
	if v, _ := last("ExecReload"); !regexp.MustCompile(`^\S*kill -HUP \$MAINPID$`).MatchString(v) {
		t.Errorf("[Service] ExecReload=%q, want kill -HUP $MAINPID (SIGHUP reloads)", v)
	}
	if v, _ := last("MemoryDenyWriteExecute"); v == "yes" || v == "true" {
		t.Error("[Service] MemoryDenyWriteExecute breaks the WASM plugin compiler")
	}

	// ExecStart serves the config under ReadOnlyPaths, and its flags work.
	start, _ := last("ExecStart")
	fields := strings.Fields(start)
	if len(fields) < 2 || filepath.Base(fields[0]) != "edgecache" {
		t.Fatalf("[Service] ExecStart=%q", start)
	}
	args := fields[1:]
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("[Service] ExecStart=%q: want serve --config FILE", start)
	}
	ro, _ := last("ReadOnlyPaths")
	if !slices.Contains(strings.Fields(ro), filepath.Dir(args[i+1])) {
		t.Errorf("[Service] the config's folder %s is not in ReadOnlyPaths=%q", filepath.Dir(args[i+1]), ro)
	}
	cfg := filepath.Join(t.TempDir(), "edgecache.yaml")
	if err := os.WriteFile(cfg, []byte("routes:\n  - origin: http://127.0.0.1:9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkServe(t, replaceArg(args, args[i+1], cfg))

	// The environment it sets must name config fields.
	for _, e := range s["Environment"] {
		name, _, _ := strings.Cut(e, "=")
		src := config.Source{Default: []byte("routes:\n  - origin: http://127.0.0.1:9000\n"), Environ: []string{name + "=/x"}}
		if _, err := src.Load(); err != nil && strings.Contains(err.Error(), name) {
			t.Errorf("[Service] Environment=%s: %v", e, err)
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			testutil.Missing(t, "systemd-analyze is not installed (make deps installs it)")
		}
		// verify wants ExecStart's binary to exist: point it at one.
		b, err := os.ReadFile("edgecache.service")
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		unitFile := filepath.Join(t.TempDir(), "edgecache.service")
		if err := os.WriteFile(unitFile, bytes.ReplaceAll(b, []byte(fields[0]), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", unitFile).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// -------------------------------------------------------- OpenTelemetry

// TestOTelCollector checks that the collector receives OTLP over gRPC and
// HTTP on the standard ports and that every pipeline names only defined
// components.
func TestOTelCollector(t *testing.T) {
	c := yamlDocs(t, "otel-collector.yaml")[0]
	for proto, port := range map[string]string{"grpc": "4317", "http": "4318"} {
		ep := str(c, "receivers", "otlp", "protocols", proto, "endpoint")
		if _, p, err := net.SplitHostPort(ep); err != nil || p != port {
			t.Errorf("receivers.otlp.protocols.%s.endpoint = %q, want port %s", proto, ep, port)
		}
	}
	pipelines, _ := get(c, "service", "pipelines").(map[string]any)
	if pipelines["traces"] == nil {
		t.Fatal("no traces pipeline")
	}
	for name, p := range pipelines {
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			for _, comp := range list(p, kind) {
				if get(c, kind, comp.(string)) == nil {
					t.Errorf("pipeline %s: %s %q is not defined", name, kind, comp)
				}
			}
		}
		if len(list(p, "receivers")) == 0 || len(list(p, "exporters")) == 0 {
			t.Errorf("pipeline %s needs receivers and exporters", name)
		}
	}
	for _, ext := range list(c, "service", "extensions") {
		if get(c, "extensions", ext.(string)) == nil {
			t.Errorf("extension %q is not defined", ext)
		}
	}
}

// -------------------------------------------------------------- Grafana

// promFuncs are the PromQL functions, aggregations and keywords the
// dashboard may use; any other identifier must be a metric or a label.
var promFuncs = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "topk": true, "bottomk": true, "quantile": true,
	"rate": true, "irate": true, "increase": true, "delta": true, "deriv": true, "histogram_quantile": true,
	"clamp_min": true, "clamp_max": true, "abs": true, "vector": true, "scalar": true, "time": true,
	"avg_over_time": true, "max_over_time": true, "min_over_time": true, "label_values": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promRange  = regexp.MustCompile(`\[[^\]]*\]`)
	promToken  = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?|=~|!~|!=|==|[(){},=/*+\-<>^%]`)
)

// promRefs returns the metric names and the label names an expression
// uses, and an error for any identifier that is neither nor a known
// function or keyword.
func promRefs(expr string) (metrics, labels []string, err error) {
	s := promString.ReplaceAllString(expr, `""`)
	s = promRange.ReplaceAllString(s, "")
	toks := promToken.FindAllString(s, -1)
	inBraces, labelList := false, false
	for i, tok := range toks {
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch {
		case tok == "{":
			inBraces = true
		case tok == "}":
			inBraces = false
		case tok == "(" && i > 0 && (toks[i-1] == "by" || toks[i-1] == "without" || toks[i-1] == "on" || toks[i-1] == "ignoring"):
			labelList = true
		case tok == ")":
			labelList = false
		case !regexp.MustCompile(`^[A-Za-z_:]`).MatchString(tok):
		case inBraces || labelList:
			labels = append(labels, tok)
		case i > 0 && toks[i-1] == "," && strings.HasPrefix(expr, "label_values("):
			labels = append(labels, tok) // label_values(metric, label)
		case next == "(" && promFuncs[tok]:
		case promFuncs[tok]:
		default:
			if _, ok := exportedMetrics[tok]; !ok {
				return nil, nil, fmt.Errorf("%q is not an exported metric (nor a PromQL function)", tok)
			}
			metrics = append(metrics, tok)
		}
	}
	return metrics, labels, nil
}

// TestGrafanaDashboard parses the dashboard and checks every PromQL
// expression: it names only exported metrics, groups and filters only by
// their labels (or le, job, instance), and every exported metric is on
// some panel.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/edgecache.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/edgecache.json: %v", err)
	}
	if str(d, "uid") == "" || str(d, "title") == "" {
		t.Error("dashboard needs a uid and a title")
	}
	var exprs []string
	ids := map[float64]bool{}
	for _, p := range list(d, "panels") {
		id, _ := get(p, "id").(float64)
		if ids[id] {
			t.Errorf("panel %q: duplicate id %v", str(p, "title"), id)
		}
		ids[id] = true
		if str(p, "type") == "row" {
			continue
		}
		if str(p, "datasource", "uid") != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want the ${datasource} variable", str(p, "title"), get(p, "datasource"))
		}
		targets := list(p, "targets")
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", str(p, "title"))
		}
		for _, tg := range targets {
			exprs = append(exprs, str(tg, "expr"))
		}
	}
	for _, v := range list(d, "templating", "list") {
		if q := str(v, "query", "query"); q != "" {
			exprs = append(exprs, q)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		metrics, labels, err := promRefs(e)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if len(metrics) == 0 {
			t.Errorf("%s: names no exported metric", e)
		}
		allowed := slices.Clone(targetLabels)
		for _, m := range metrics {
			used[m] = true
			allowed = append(allowed, exportedMetrics[m]...)
		}
		for _, l := range labels {
			if !slices.Contains(allowed, l) {
				t.Errorf("%s: label %q is not a label of %v", e, l, metrics)
			}
		}
	}
	for m := range exportedMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// TestPromRefs makes sure the PromQL check catches what it is for.
func TestPromRefs(t *testing.T) {
	for _, tc := range []struct{ expr, err string }{
		{`sum by (route) (rate(edgecache_requests_total{code=~"5.."}[5m]))`, ""},
		{`sum(rate(edgecache_request_total[5m]))`, "edgecache_request_total"},
		{`histogram_quantile(0.9, sum by (le) (rate(edgecache_origin_request_duration_seconds_bucket[1m])))`, ""},
		{`sum by (status) (rate(edgecache_requests_total[5m]))`, "label"},
		{`rate(edgecache_cache_hits_total{shard="a"}[5m])`, "label"},
	} {
		metrics, labels, err := promRefs(tc.expr)
		if err == nil {
			allowed := slices.Clone(targetLabels)
			for _, m := range metrics {
				allowed = append(allowed, exportedMetrics[m]...)
			}
			for _, l := range labels {
				if !slices.Contains(allowed, l) {
					err = fmt.Errorf("label %q", l)
				}
			}
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one about %q", tc.expr, err, tc.err)
		}
	}
}

// TestMetricsDeclared checks exportedMetrics against the metric name
// constants of internal/metrics, once that package exists.
func TestMetricsDeclared(t *testing.T) {
	dir := filepath.Join("..", "internal", "metrics")
	_, parsed := testutil.ParseDir(t, dir)
	if len(parsed) == 0 {
		t.Fatal("no internal/metrics package: the dashboard's metrics cannot be checked")
	}
	declared := map[string]bool{}
	for _, p := range parsed {
		ast.Inspect(p, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "edgecache_") {
					declared[s] = true
				}
			}
			return true
		})
	}
	for m := range exportedMetrics {
		base := strings.TrimSuffix(m, "_bucket")
		if !declared[base] {
			t.Errorf("%s is not declared in internal/metrics", base)
		}
	}
}
