package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgecache/edgecache/hook"
)

// Options configure a Host.
type Options struct {
	// CacheDir keeps compiled plugins on disk (wazero's compilation
	// cache), so that a restart with the same plugins starts fast. "" keeps
	// them in memory only, for the life of the Host.
	CacheDir string
	// Logger receives fault and plugin log lines; nil discards them.
	Logger *slog.Logger
	// GuestOutput receives what guests write to WASI stdout and stderr (a
	// Go guest's panic message, for one); nil discards it. It must be safe
	// for concurrent use.
	GuestOutput io.Writer
}

// Host compiles and loads plugins. It owns the compilation cache shared by
// every plugin it loads; each plugin has a wazero runtime of its own (the
// memory limit is per runtime).
type Host struct {
	cache  wazero.CompilationCache
	log    *slog.Logger
	output io.Writer

	mu      sync.Mutex
	plugins map[*Plugin]struct{}
	closed  bool
}

// NewHost returns a Host. Close it to close its plugins and the cache.
func NewHost(ctx context.Context, o Options) (*Host, error) {
	h := &Host{log: o.Logger, output: o.GuestOutput, plugins: make(map[*Plugin]struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.output == nil {
		h.output = io.Discard
	}
	if o.CacheDir == "" {
		h.cache = wazero.NewCompilationCache()
	} else {
		c, err := wazero.NewCompilationCacheWithDir(o.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %s: %w", o.CacheDir, err)
		}
		h.cache = c
	}
	return h, nil
}

// Close closes every plugin still open (waiting for their calls), then the
// compilation cache's in-memory part. The on-disk cache stays. Load and
// Compile fail after Close; they must not run concurrently with it.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	ps := make([]*Plugin, 0, len(h.plugins))
	for p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// runtimeConfig is the configuration of every plugin runtime. Termination
// checks stay on: without them a guest in an infinite loop can never be
// stopped, and the next Go GC waits for it forever.
func (h *Host) runtimeConfig(memoryLimitPages uint32) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(memoryLimitPages)
}

// ModuleInfo is what a plugin module declares.
type ModuleInfo struct {
	ABIVersion int
	Hooks      []hook.ID // exported hooks, in hook.ID order
}

// HookNames returns the exported hooks' names, for messages.
func (m ModuleInfo) HookNames() string {
	names := make([]string, len(m.Hooks))
	for i, hk := range m.Hooks {
		names[i] = hk.String()
	}
	return strings.Join(names, ", ")
}

// Compile compiles and validates a module without instantiating it: with a
// CacheDir, the compiled code lands in the cache, ready for Load (this is
// `edgecache plugin compile`).
func (h *Host) Compile(ctx context.Context, wasm []byte) (ModuleInfo, error) {
	if h.isClosed() {
		return ModuleInfo{}, ErrHostClosed
	}
	rt := wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(DefaultMemoryLimitPages))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, mergeDataSegments(wasm))
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	return validate(cm)
}

// validate checks a compiled module against ABI v1: the version export,
// the hooks' signatures, and that every import is a host function this
// host provides with the right signature.
func validate(cm wazero.CompiledModule) (ModuleInfo, error) {
	var info ModuleInfo
	exports := cm.ExportedFunctions()
	var versions []int
	for name, def := range exports {
		if v, ok := strings.CutPrefix(name, abiExportPrefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				continue
			}
			if n == ABIVersion && (len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0) {
				return info, fmt.Errorf("%w: export %s must be a function () -> ()", ErrInvalidModule, name)
			}
			versions = append(versions, n)
		}
	}
	sort.Ints(versions)
	switch {
	case len(versions) == 0:
		return info, fmt.Errorf("%w: the module exports no %s%d function (not an edgecache plugin?)", ErrABIVersion, abiExportPrefix, ABIVersion)
	case !containsInt(versions, ABIVersion):
		return info, fmt.Errorf("%w: the module targets ABI v%d; this host implements v%d", ErrABIVersion, versions[len(versions)-1], ABIVersion)
	}
	info.ABIVersion = ABIVersion

	for hk := hook.ID(0); hk < hook.Count; hk++ {
		def, ok := exports[hk.String()]
		if !ok {
			continue
		}
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != api.ValueTypeI32 {
			return info, fmt.Errorf("%w: hook %s must be a function () -> i32", ErrInvalidModule, hk)
		}
		info.Hooks = append(info.Hooks, hk)
	}
	if len(info.Hooks) == 0 || (len(info.Hooks) == 1 && info.Hooks[0] == hook.InitHook) {
		return info, fmt.Errorf("%w: the module exports none of the hooks key, response, miss", ErrInvalidModule)
	}

	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case wasiModule:
			// wazero checks the names and signatures at instantiation.
		case HostModule:
			hf, ok := hostFuncTypes[name]
			if !ok {
				return info, fmt.Errorf("%w: imports %s.%s, which ABI v%d does not have", ErrInvalidModule, mod, name, ABIVersion)
			}
			if !sameTypes(def.ParamTypes(), hf.params) || !sameTypes(def.ResultTypes(), hf.results) {
				return info, fmt.Errorf("%w: imports %s.%s with the wrong signature", ErrInvalidModule, mod, name)
			}
		default:
			return info, fmt.Errorf("%w: imports %s.%s; only %q and %q are provided", ErrInvalidModule, mod, name, HostModule, wasiModule)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return info, fmt.Errorf("%w: imports a memory; a plugin must define its own", ErrInvalidModule)
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return info, fmt.Errorf("%w: exports no memory named \"memory\"", ErrInvalidModule)
	}
	return info, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (h *Host) add(p *Plugin) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrHostClosed
	}
	h.plugins[p] = struct{}{}
	return nil
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *Host) remove(p *Plugin) {
	h.mu.Lock()
	delete(h.plugins, p)
	h.mu.Unlock()
}
