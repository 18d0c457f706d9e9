//go:build wasip1

package edgecache

import "unsafe"

// The host functions of ABI v1 (plugins/ABI.md).

//go:wasmimport edgecache get_config
func getConfig(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_method
func getMethod(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_scheme
func getScheme(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_host
func getHost(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_path
func getPath(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_query
func getQuery(buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_header
func getHeader(name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_status
func getStatus() int32

//go:wasmimport edgecache get_response_header
func getResponseHeader(name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport edgecache get_default_ttl
func getDefaultTTL() int64

//go:wasmimport edgecache set_key
func setKey(ptr unsafe.Pointer, n int32)

//go:wasmimport edgecache add_key_part
func addKeyPart(ptr unsafe.Pointer, n int32)

//go:wasmimport edgecache set_ttl
func setTTL(ms int64)

//go:wasmimport edgecache set_stale_while_revalidate
func setStaleWhileRevalidate(ms int64)

//go:wasmimport edgecache set_stale_if_error
func setStaleIfError(ms int64)

//go:wasmimport edgecache add_tag
func addTag(ptr unsafe.Pointer, n int32)

//go:wasmimport edgecache set_no_store
func setNoStore(ptr unsafe.Pointer, n int32)

//go:wasmimport edgecache set_bypass
func setBypass()

//go:wasmimport edgecache set_origin_url
func setOriginURL(ptr unsafe.Pointer, n int32)

//go:wasmimport edgecache set_origin_header
func setOriginHeader(name unsafe.Pointer, nameLen int32, value unsafe.Pointer, valueLen int32)

//go:wasmimport edgecache respond
func respond(status int32, body unsafe.Pointer, n int32)

//go:wasmimport edgecache log
func logMsg(level int32, ptr unsafe.Pointer, n int32)

// abiVersion declares ABI v1; the host never calls it.
//
//go:wasmexport edgecache_abi_v1
func abiVersion() {}

// initHook runs the function given to OnInit with the plugin's config.
//
//go:wasmexport init
func initHook() int32 {
	if onInit == nil {
		return OK
	}
	if err := onInit(Config()); err != nil {
		Log(LevelError, "init: "+err.Error())
		return Decline
	}
	return OK
}
