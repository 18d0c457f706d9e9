// The AssemblyScript SDK for edgecache policy plugins (ABI v1, see
// plugins/ABI.md). It hides the buffer protocol behind plain calls:
// request.header("Accept"), response.setTTL(300_000).
//
// A plugin's entry file re-exports the ABI version and exports the hooks
// it implements; each returns OK to apply what it set or DECLINE to let
// the built-in policy decide:
//
//   import * as ec from "@edgecache/plugin-sdk/assembly/index";
//   export { edgecache_abi_v1 } from "@edgecache/plugin-sdk/assembly/index";
//
//   export function key(): i32 {
//     ec.key.set(ec.request.host() + ec.request.path());
//     return ec.OK;
//   }
//
// (Name the module path in full: asc 0.28 does not resolve the bare
// package name.) Build with
//
//   asc assembly/index.ts -O3 --noAssert \
//     --use abort=~lib/@edgecache/plugin-sdk/assembly/index/abort -o plugin.wasm
//
// The SDK's abort logs through the host and traps, so the module imports
// nothing but "edgecache" (asc's default abort is an env.abort import,
// which the host rejects). Durations are milliseconds (i64). Strings cross
// the boundary as UTF-8. A hook must not name a namespace it uses: import
// the SDK as a namespace (ec.miss.bypass() inside `export function miss()`).

// @ts-ignore: decorator
@external("edgecache", "get_config") declare function get_config(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_method") declare function get_method(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_scheme") declare function get_scheme(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_host") declare function get_host(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_path") declare function get_path(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_query") declare function get_query(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_header") declare function get_header(name: usize, nameLen: i32, buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_status") declare function get_status(): i32;
// @ts-ignore: decorator
@external("edgecache", "get_response_header") declare function get_response_header(name: usize, nameLen: i32, buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("edgecache", "get_default_ttl") declare function get_default_ttl(): i64;
// @ts-ignore: decorator
@external("edgecache", "set_key") declare function set_key(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "add_key_part") declare function add_key_part(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "set_ttl") declare function set_ttl(ms: i64): void;
// @ts-ignore: decorator
@external("edgecache", "set_stale_while_revalidate") declare function set_stale_while_revalidate(ms: i64): void;
// @ts-ignore: decorator
@external("edgecache", "set_stale_if_error") declare function set_stale_if_error(ms: i64): void;
// @ts-ignore: decorator
@external("edgecache", "add_tag") declare function add_tag(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "set_no_store") declare function set_no_store(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "set_bypass") declare function set_bypass(): void;
// @ts-ignore: decorator
@external("edgecache", "set_origin_url") declare function set_origin_url(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "set_origin_header") declare function set_origin_header(name: usize, nameLen: i32, value: usize, valueLen: i32): void;
// @ts-ignore: decorator
@external("edgecache", "respond") declare function host_respond(status: i32, body: usize, len: i32): void;
// @ts-ignore: decorator
@external("edgecache", "log") declare function host_log(level: i32, ptr: usize, len: i32): void;

/** Apply what the hook set. */
export const OK: i32 = 0;
/** Let the built-in policy decide (from init: reject the config). */
export const DECLINE: i32 = 1;

/** Declares ABI v1; re-export it from the plugin's entry file. */
export function edgecache_abi_v1(): void {}

/** Log levels. */
export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARN: i32 = 2;
export const ERROR: i32 = 3;

let scratch = new ArrayBuffer(1024);

// read runs a buf/limit host function, retrying with a larger buffer when
// the value did not fit; null when the host returned -1.
function read(get: (buf: usize, limit: i32) => i32): string | null {
  let n = get(changetype<usize>(scratch), scratch.byteLength);
  if (n < 0) return null;
  if (n > scratch.byteLength) {
    scratch = new ArrayBuffer(n);
    n = get(changetype<usize>(scratch), scratch.byteLength);
  }
  return String.UTF8.decodeUnsafe(changetype<usize>(scratch), <usize>n);
}

function readOr(get: (buf: usize, limit: i32) => i32): string {
  const s = read(get);
  return s === null ? "" : s;
}

// The name of the header being read, for the closures below (AssemblyScript
// closures cannot capture locals).
let headerName = new ArrayBuffer(0);

function readHeader(b: usize, l: i32): i32 {
  return get_header(changetype<usize>(headerName), headerName.byteLength, b, l);
}

function readResponseHeader(b: usize, l: i32): i32 {
  return get_response_header(changetype<usize>(headerName), headerName.byteLength, b, l);
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

/** The plugin's config as given in the gateway config (by convention JSON). */
export function config(): string {
  return readOr((b: usize, l: i32): i32 => get_config(b, l));
}

/** The client request (every hook; empty in init). */
export namespace request {
  /** The method, e.g. "GET". */
  export function method(): string {
    return readOr((b: usize, l: i32): i32 => get_method(b, l));
  }
  /** "http" or "https". */
  export function scheme(): string {
    return readOr((b: usize, l: i32): i32 => get_scheme(b, l));
  }
  /** The host, lower-case, without a default port. */
  export function host(): string {
    return readOr((b: usize, l: i32): i32 => get_host(b, l));
  }
  /** The escaped path. */
  export function path(): string {
    return readOr((b: usize, l: i32): i32 => get_path(b, l));
  }
  /** The raw query, without '?'. */
  export function query(): string {
    return readOr((b: usize, l: i32): i32 => get_query(b, l));
  }
  /** A header's values joined by ", ", or null when absent. */
  export function header(name: string): string | null {
    headerName = utf8(name);
    return read(readHeader);
  }
}

/** Results of the key hook. */
export namespace key {
  /** Sets the whole cache key. */
  export function set(k: string): void {
    const b = utf8(k);
    set_key(changetype<usize>(b), b.byteLength);
  }
  /** Appends '|' and part to the key (the built-in one, or the one set). */
  export function addPart(part: string): void {
    const b = utf8(part);
    add_key_part(changetype<usize>(b), b.byteLength);
  }
}

/** The origin response and the results of the response hook. */
export namespace response {
  /** The origin's status code. */
  export function status(): i32 {
    return get_status();
  }
  /** An origin response header's values joined by ", ", or null. */
  export function header(name: string): string | null {
    headerName = utf8(name);
    return read(readResponseHeader);
  }
  /** The built-in policy's TTL in ms, or -1 when it would not store. */
  export function defaultTTL(): i64 {
    return get_default_ttl();
  }
  /** Stores the response, fresh for ms milliseconds. */
  export function setTTL(ms: i64): void {
    set_ttl(ms);
  }
  export function setStaleWhileRevalidate(ms: i64): void {
    set_stale_while_revalidate(ms);
  }
  export function setStaleIfError(ms: i64): void {
    set_stale_if_error(ms);
  }
  /** Adds a surrogate key for purges. */
  export function addTag(tag: string): void {
    const b = utf8(tag);
    add_tag(changetype<usize>(b), b.byteLength);
  }
  /** Do not store the response. */
  export function noStore(reason: string): void {
    const b = utf8(reason);
    set_no_store(changetype<usize>(b), b.byteLength);
  }
}

/** Results of the miss hook. */
export namespace miss {
  /** Fetch from the origin without storing the response. */
  export function bypass(): void {
    set_bypass();
  }
  /** Fetch this absolute URL instead of the route's origin. */
  export function setOriginURL(url: string): void {
    const b = utf8(url);
    set_origin_url(changetype<usize>(b), b.byteLength);
  }
  /** Sets a header on the origin request. */
  export function setOriginHeader(name: string, value: string): void {
    const n = utf8(name);
    const v = utf8(value);
    set_origin_header(changetype<usize>(n), n.byteLength, changetype<usize>(v), v.byteLength);
  }
  /** Answers the client directly. */
  export function respond(status: i32, body: string): void {
    const b = utf8(body);
    host_respond(status, changetype<usize>(b), b.byteLength);
  }
}

/** Writes a line to the gateway's log (rate-limited by the host). */
export function log(level: i32, msg: string): void {
  const b = utf8(msg);
  host_log(level, changetype<usize>(b), b.byteLength);
}

/** The abort handler (--use abort=…): log through the host, then trap. */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let m = "abort";
  if (message !== null) m += ": " + message;
  if (fileName !== null) m += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  log(ERROR, m);
  unreachable();
}
