package wasm

import (
	"context"
	"crypto/rand"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgecache/edgecache/hook"
)

// ABIVersion is the plugin ABI this host implements (plugins/ABI.md). A
// module declares the version it targets by exporting a function named
// "edgecache_abi_v<N>".
const ABIVersion = 1

// HostModule is the import module of the ABI's host functions.
const HostModule = "edgecache"

const (
	abiExportPrefix = "edgecache_abi_v"
	wasiModule      = wasi_snapshot_preview1.ModuleName
)

// Limits of what a guest may set. A result past a limit is an ABI fault:
// the call fails and its instance is discarded.
const (
	MaxKeyBytes      = 4096     // set_key, and the key with all add_key_part parts
	MaxTags          = 64       // add_tag calls per response
	MaxTagBytes      = 256      // one tag
	MaxReasonBytes   = 256      // set_no_store reason
	MaxURLBytes      = 8192     // set_origin_url
	MaxHeaderName    = 256      // a header name passed to any function
	MaxHeaderValue   = 8192     // set_origin_header value
	MaxOriginHeaders = 32       // set_origin_header calls per miss
	MaxRespondBody   = 64 << 10 // respond body
	MaxLogBytes      = 1024     // log message; longer ones are truncated, not a fault
	MaxTTL           = 365 * 24 * time.Hour
	errnoSuccess     = 0
	errnoFault       = 21 // WASI EFAULT
	errnoInval       = 28 // WASI EINVAL
	clockRealtime    = 0
	clockMonotonic   = 1
	clockProcessCPU  = 2
	clockThreadCPU   = 3
	minRespondStatus = 200
	maxRespondStatus = 599
)

// request fields, as bits of the set a key hook read (for memoization).
const (
	fieldMethod = 1 << iota
	fieldScheme
	fieldHost
	fieldPath
	fieldQuery
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one function of the ABI's import module.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(in *instance, s []uint64)
}

// hostFuncs is the ABI v1 import module "edgecache". Every function takes
// and returns only i32/i64. "buf, limit" pairs name a buffer in the guest's
// memory: the host writes the value there when it fits and always returns
// its real length, so the guest can retry with a larger buffer.
var hostFuncs = []hostFunc{
	{"get_config", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.retString(s, in.p.config) }},
	{"get_method", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.readField(s, fieldMethod, in.req.Method) }},
	{"get_scheme", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.readField(s, fieldScheme, in.req.Scheme) }},
	{"get_host", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.readField(s, fieldHost, in.req.Host) }},
	{"get_path", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.readField(s, fieldPath, in.req.Path) }},
	{"get_query", p(i32, i32), r(i32), func(in *instance, s []uint64) { in.readField(s, fieldQuery, in.req.RawQuery) }},
	{"get_header", p(i32, i32, i32, i32), r(i32), (*instance).getHeader},
	{"get_status", nil, r(i32), func(in *instance, s []uint64) { s[0] = uint64(uint32(int32(in.resp.Status))) }},
	{"get_response_header", p(i32, i32, i32, i32), r(i32), (*instance).getResponseHeader},
	{"get_default_ttl", nil, r(i64), (*instance).getDefaultTTL},
	{"set_key", p(i32, i32), nil, (*instance).setKey},
	{"add_key_part", p(i32, i32), nil, (*instance).addKeyPart},
	{"set_ttl", p(i64), nil, func(in *instance, s []uint64) {
		in.dec.TTL = in.duration(hook.ResponseHook, "set_ttl", s[0])
		in.dec.Store, in.dec.Reason = true, ""
	}},
	{"set_stale_while_revalidate", p(i64), nil, func(in *instance, s []uint64) {
		in.dec.StaleWhileRevalidate = in.duration(hook.ResponseHook, "set_stale_while_revalidate", s[0])
	}},
	{"set_stale_if_error", p(i64), nil, func(in *instance, s []uint64) {
		in.dec.StaleIfError = in.duration(hook.ResponseHook, "set_stale_if_error", s[0])
	}},
	{"add_tag", p(i32, i32), nil, (*instance).addTag},
	{"set_no_store", p(i32, i32), nil, (*instance).setNoStore},
	{"set_bypass", nil, nil, func(in *instance, s []uint64) { in.only(hook.MissHook, "set_bypass"); in.miss.Bypass = true }},
	{"set_origin_url", p(i32, i32), nil, (*instance).setOriginURL},
	{"set_origin_header", p(i32, i32, i32, i32), nil, (*instance).setOriginHeader},
	{"respond", p(i32, i32, i32), nil, (*instance).respond},
	{"log", p(i32, i32, i32), nil, (*instance).logLine},

	// The built-in policy's answer, so a plugin can adjust rather than
	// replace it (ABI.md, "The built-in key and decisions").
	{"get_builtin_key", p(i32, i32), r(i32), (*instance).getBuiltinKey},
	{"get_builtin_ttl", nil, r(i64), (*instance).getDefaultTTL},
	{"get_builtin_stale_while_revalidate", nil, r(i64), func(in *instance, s []uint64) {
		in.retBuiltinDuration(s, in.base.StaleWhileRevalidate)
	}},
	{"get_builtin_stale_if_error", nil, r(i64), func(in *instance, s []uint64) {
		in.retBuiltinDuration(s, in.base.StaleIfError)
	}},
	{"get_builtin_no_store_reason", p(i32, i32), r(i32), func(in *instance, s []uint64) {
		if in.hook != hook.ResponseHook || in.base.Store {
			in.view(uint32(s[0]), uint32(s[1]), "buffer")
			s[0] = math.MaxUint32 // -1: the built-in policy stores
			return
		}
		in.retString(s, in.base.Reason)
	}},
	{"get_builtin_bypass", nil, r(i32), func(in *instance, s []uint64) {
		switch {
		case in.hook != hook.MissHook:
			s[0] = math.MaxUint32 // -1
		case in.baseMiss.Bypass:
			s[0] = 1
		default:
			s[0] = 0
		}
	}},
	{"get_builtin_origin_url", p(i32, i32), r(i32), func(in *instance, s []uint64) {
		if in.hook != hook.MissHook || in.baseMiss.OriginURL == "" {
			in.view(uint32(s[0]), uint32(s[1]), "buffer")
			s[0] = math.MaxUint32 // -1: the route's origin
			return
		}
		in.retString(s, in.baseMiss.OriginURL)
	}},
}

func p(t ...api.ValueType) []api.ValueType { return t }
func r(t ...api.ValueType) []api.ValueType { return t }

// instantiateImports instantiates the two import modules in rt: the ABI's
// "edgecache" and WASI preview1 with clock_time_get and random_get
// replaced by versions that report to the memo when a key hook reads the
// wall clock or randomness (see doc.go, "Memoization").
func instantiateImports(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(HostModule)
	for _, hf := range hostFuncs {
		fn := hf.fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
				fn(instanceOf(ctx, m), s)
			}), hf.params, hf.results).
			Export(hf.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}
	w := rt.NewHostModuleBuilder(wasiModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(w)
	w.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
			instanceOf(ctx, m).clockTimeGet(s)
		}), p(i32, i64, i32), r(i32)).
		Export("clock_time_get")
	w.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
			instanceOf(ctx, m).randomGet(s)
		}), p(i32, i32), r(i32)).
		Export("random_get")
	_, err := w.Instantiate(ctx)
	return err
}

// hostFuncTypes maps each ABI function name to its signature, for checking
// a module's imports before instantiating it.
var hostFuncTypes = func() map[string]hostFunc {
	m := make(map[string]hostFunc, len(hostFuncs))
	for _, hf := range hostFuncs {
		m[hf.name] = hf
	}
	return m
}()

// violate aborts the guest call: the instance records why, and the panic
// unwinds through wazero, which returns it as the call's error.
func (in *instance) violate(msg string) {
	if in.violation == "" {
		in.violation = msg
	}
	panic(&abiViolation{msg})
}

// only checks that a setter is called from the hook it belongs to.
func (in *instance) only(h hook.ID, fn string) {
	if in.hook != h {
		in.violate(fn + " called from the " + in.hook.String() + " hook")
	}
}

// view returns the guest's bytes [ptr, ptr+n), or violates the ABI.
func (in *instance) view(ptr, n uint32, what string) []byte {
	if in.mem == nil {
		in.violate(what + ": module has no memory")
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		in.violate(what + ": [" + strconv.FormatUint(uint64(ptr), 10) + ", +" +
			strconv.FormatUint(uint64(n), 10) + ") is outside the guest's memory")
	}
	return b
}

// retString serves a string into the buffer (s[0], s[1]) and returns its
// length in s[0]. The whole buffer must lie in the guest's memory, whatever
// the value's length, so a bad pointer is caught on the first call.
func (in *instance) retString(s []uint64, v string) {
	buf := in.view(uint32(s[0]), uint32(s[1]), "buffer")
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	s[0] = uint64(uint32(int32(len(v))))
}

func (in *instance) readField(s []uint64, f uint8, v string) {
	in.readMask |= f
	in.retString(s, v)
}

// headerName reads a header name from the guest and canonicalizes it into
// in.name (as textproto does for valid names). ok is false for a name no
// header can have.
func (in *instance) headerName(ptr, n uint32) (ok bool) {
	if n > MaxHeaderName {
		in.violate("header name longer than " + strconv.Itoa(MaxHeaderName) + " bytes")
	}
	b := in.view(ptr, n, "header name")
	in.name = append(in.name[:0], b...)
	if len(b) == 0 {
		return false
	}
	upper := true
	for i, c := range in.name {
		if !isTokenChar(c) {
			return false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			in.name[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			in.name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return true
}

func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if c >= 0x80 || c <= ' ' || c == 0x7f {
		return false
	}
	switch c {
	case '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}':
		return false
	}
	return true
}

// retValues serves the values of a header, joined by ", ", or -1 when the
// header is absent.
func (in *instance) retValues(s []uint64, vals []string) {
	buf := in.view(uint32(s[2]), uint32(s[3]), "buffer")
	if len(vals) == 0 {
		s[0] = uint64(math.MaxUint32) // -1: absent
		return
	}
	n := 2 * (len(vals) - 1)
	for _, v := range vals {
		n += len(v)
	}
	if n <= len(buf) {
		off := 0
		for i, v := range vals {
			if i > 0 {
				off += copy(buf[off:], ", ")
			}
			off += copy(buf[off:], v)
		}
	}
	s[0] = uint64(uint32(int32(n)))
}

func (in *instance) getHeader(s []uint64) {
	ok := in.headerName(uint32(s[0]), uint32(s[1]))
	if !ok {
		in.retValues(s, nil)
		return
	}
	if in.hook == hook.KeyHook {
		in.noteHeader()
	}
	in.retValues(s, in.req.Header[string(in.name)])
}

func (in *instance) getResponseHeader(s []uint64) {
	if !in.headerName(uint32(s[0]), uint32(s[1])) || in.hook != hook.ResponseHook {
		in.retValues(s, nil)
		return
	}
	in.retValues(s, in.resp.Header[string(in.name)])
}

func (in *instance) getDefaultTTL(s []uint64) {
	if in.hook != hook.ResponseHook || !in.base.Store {
		s[0] = math.MaxUint64 // -1
		return
	}
	s[0] = uint64(in.base.TTL.Milliseconds())
}

// getBuiltinKey serves the built-in cache key of the request (the
// options' BuiltinKey: policies.DefaultKey), or -1 when the host was given
// none. In the key hook it counts as reading every field the built-in key
// is made of, for the memo.
func (in *instance) getBuiltinKey(s []uint64) {
	bk := in.p.opts.BuiltinKey
	if bk == nil {
		in.view(uint32(s[0]), uint32(s[1]), "buffer")
		s[0] = math.MaxUint32
		return
	}
	in.readMask |= fieldScheme | fieldHost | fieldPath | fieldQuery
	in.builtinKey = bk(in.builtinKey[:0], &in.req)
	buf := in.view(uint32(s[0]), uint32(s[1]), "buffer")
	if len(in.builtinKey) <= len(buf) {
		copy(buf, in.builtinKey)
	}
	s[0] = uint64(uint32(int32(len(in.builtinKey))))
}

// retBuiltinDuration serves a duration of the built-in decision in ms, or
// -1 outside the response hook or when the built-in policy does not store.
func (in *instance) retBuiltinDuration(s []uint64, d time.Duration) {
	if in.hook != hook.ResponseHook || !in.base.Store {
		s[0] = math.MaxUint64 // -1
		return
	}
	s[0] = uint64(d.Milliseconds())
}

func (in *instance) setKey(s []uint64) {
	in.only(hook.KeyHook, "set_key")
	n := uint32(s[1])
	if n == 0 {
		in.violate("set_key with an empty key")
	}
	if n > MaxKeyBytes {
		in.violate("set_key: key longer than " + strconv.Itoa(MaxKeyBytes) + " bytes")
	}
	in.key = append(in.key[:0], in.view(uint32(s[0]), n, "set_key")...)
	in.keyAct = hook.KeyReplace
}

func (in *instance) addKeyPart(s []uint64) {
	in.only(hook.KeyHook, "add_key_part")
	n := uint32(s[1])
	if uint64(len(in.key))+1+uint64(n) > MaxKeyBytes {
		in.violate("add_key_part: key longer than " + strconv.Itoa(MaxKeyBytes) + " bytes")
	}
	b := in.view(uint32(s[0]), n, "add_key_part")
	in.key = append(append(in.key, '|'), b...)
	if in.keyAct == hook.KeyDefault {
		in.keyAct = hook.KeyExtend
	}
}

// duration converts a guest's milliseconds, which must lie in [0, MaxTTL].
func (in *instance) duration(h hook.ID, fn string, ms uint64) time.Duration {
	in.only(h, fn)
	if int64(ms) < 0 || int64(ms) > MaxTTL.Milliseconds() {
		in.violate(fn + ": " + strconv.FormatInt(int64(ms), 10) + " ms is outside [0, 1 year]")
	}
	return time.Duration(ms) * time.Millisecond
}

func (in *instance) addTag(s []uint64) {
	in.only(hook.ResponseHook, "add_tag")
	n := uint32(s[1])
	switch {
	case n == 0 || n > MaxTagBytes:
		in.violate("add_tag: a tag is 1 to " + strconv.Itoa(MaxTagBytes) + " bytes")
	case in.tags >= MaxTags:
		in.violate("add_tag: more than " + strconv.Itoa(MaxTags) + " tags")
	}
	b := in.view(uint32(s[0]), n, "add_tag")
	if !visibleASCII(b) {
		in.violate("add_tag: a tag is visible ASCII (no spaces or controls)")
	}
	tag := string(b)
	in.tags++
	// Never append into the built-in decision's backing array.
	in.dec.Tags = append(in.dec.Tags[:len(in.dec.Tags):len(in.dec.Tags)], tag)
}

func (in *instance) setNoStore(s []uint64) {
	in.only(hook.ResponseHook, "set_no_store")
	n := uint32(s[1])
	if n > MaxReasonBytes {
		in.violate("set_no_store: reason longer than " + strconv.Itoa(MaxReasonBytes) + " bytes")
	}
	reason := "plugin"
	if n > 0 {
		b := in.view(uint32(s[0]), n, "set_no_store")
		for _, c := range b {
			if !isTokenChar(c) {
				in.violate("set_no_store: the reason must be a token (it is shown in Cache-Status)")
			}
		}
		reason = string(b)
	}
	in.dec.Store, in.dec.Reason = false, reason
}

func (in *instance) setOriginURL(s []uint64) {
	in.only(hook.MissHook, "set_origin_url")
	n := uint32(s[1])
	if n > MaxURLBytes {
		in.violate("set_origin_url: URL longer than " + strconv.Itoa(MaxURLBytes) + " bytes")
	}
	raw := string(in.view(uint32(s[0]), n, "set_origin_url"))
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		in.violate("set_origin_url: not an absolute http(s) URL")
	}
	in.miss.OriginURL = raw
}

func (in *instance) setOriginHeader(s []uint64) {
	in.only(hook.MissHook, "set_origin_header")
	if !in.headerName(uint32(s[0]), uint32(s[1])) {
		in.violate("set_origin_header: invalid header name")
	}
	n := uint32(s[3])
	if n > MaxHeaderValue {
		in.violate("set_origin_header: value longer than " + strconv.Itoa(MaxHeaderValue) + " bytes")
	}
	v := in.view(uint32(s[2]), n, "set_origin_header")
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			in.violate("set_origin_header: value contains CR, LF or NUL")
		}
	}
	if !in.missHeaderOwned {
		// The action started as the built-in policy's: never write into
		// its map.
		h := make(map[string][]string, len(in.miss.Header)+1)
		for k, v := range in.miss.Header {
			h[k] = v
		}
		in.miss.Header, in.missHeaderOwned = h, true
	}
	name := string(in.name)
	if _, ok := in.miss.Header[name]; !ok && len(in.miss.Header) >= MaxOriginHeaders {
		in.violate("set_origin_header: more than " + strconv.Itoa(MaxOriginHeaders) + " headers")
	}
	in.miss.Header[name] = []string{string(v)}
}

func (in *instance) respond(s []uint64) {
	in.only(hook.MissHook, "respond")
	status, n := int32(s[0]), uint32(s[2])
	if status < minRespondStatus || status > maxRespondStatus {
		in.violate("respond: status " + strconv.Itoa(int(status)) + " is outside [200, 599]")
	}
	if n > MaxRespondBody {
		in.violate("respond: body longer than " + strconv.Itoa(MaxRespondBody) + " bytes")
	}
	in.miss.Status = int(status)
	in.miss.Body = append([]byte(nil), in.view(uint32(s[1]), n, "respond")...)
}

func (in *instance) logLine(s []uint64) {
	level := slog.LevelInfo
	switch int32(s[0]) {
	case 0:
		level = slog.LevelDebug
	case 2:
		level = slog.LevelWarn
	case 3:
		level = slog.LevelError
	}
	n := uint32(s[2])
	if n > MaxLogBytes {
		n = MaxLogBytes
	}
	msg := in.view(uint32(s[1]), n, "log")
	pl := in.p
	if !pl.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := pl.logLimit.allow(nanotime())
	if !ok {
		return
	}
	if suppressed > 0 {
		pl.log.Log(context.Background(), level, string(msg), "plugin", pl.name, "hook", in.hook.String(), "suppressed", suppressed)
		return
	}
	pl.log.Log(context.Background(), level, string(msg), "plugin", pl.name, "hook", in.hook.String())
}

// clockTimeGet is WASI's clock_time_get. Reading the wall clock or a CPU
// clock from a key hook makes that call's result unmemoizable; the
// monotonic clock does not (language runtimes read it for their own
// scheduling, and it cannot name anything).
func (in *instance) clockTimeGet(s []uint64) {
	id, resultPtr := uint32(s[0]), uint32(s[2])
	var v int64
	switch id {
	case clockRealtime:
		v = time.Now().UnixNano()
		in.impure = true
	case clockMonotonic:
		v = nanotime()
	case clockProcessCPU, clockThreadCPU:
		v = nanotime()
		in.impure = true
	default:
		s[0] = errnoInval
		return
	}
	if in.mem == nil || !in.mem.WriteUint64Le(resultPtr, uint64(v)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

// randomGet is WASI's random_get; it makes a key hook's result
// unmemoizable.
func (in *instance) randomGet(s []uint64) {
	in.impure = true
	if in.mem == nil {
		s[0] = errnoFault
		return
	}
	b, ok := in.mem.Read(uint32(s[0]), uint32(s[1]))
	if !ok {
		s[0] = errnoFault
		return
	}
	_, _ = rand.Read(b)
	s[0] = errnoSuccess
}

// epoch anchors nanotime: a monotonic clock for deadlines and the guests.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) + 1 }
