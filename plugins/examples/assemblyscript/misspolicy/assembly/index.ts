// misspolicy — a miss plugin: what to do when the cache has no entry.
//
//   - A request with credentials (an Authorization header, or a cookie
//     named in "bypass_cookies") is fetched from the origin and never
//     stored: it may carry someone's private answer.
//   - A path under one of "fallback_prefixes" is fetched from
//     "fallback_origin" (the same path and query), e.g. while a legacy
//     section is served by another backend.
//   - A path under one of "deny_prefixes" is answered 403 at the edge,
//     without reaching the origin.
//   - Every origin request gets "X-Edge-Policy: misspolicy".
//
// Config:
//   {"fallback_origin": "https://legacy.example.net",
//    "fallback_prefixes": ["/legacy/", "/old-api/"],
//    "bypass_cookies": ["session", "sid"],
//    "deny_prefixes": ["/internal/"]}
import * as ec from "../../../../sdk/assemblyscript/assembly/index";
export { edgecache_abi_v1 } from "../../../../sdk/assemblyscript/assembly/index";

let fallbackOrigin = "";
let fallbackPrefixes: string[] = [];
let bypassCookies: string[] = [];
let denyPrefixes: string[] = [];

export function init(): i32 {
  const c = ec.config();
  if (c.length == 0) return ec.OK;
  const p = new Parser(c);
  if (!p.object()) {
    ec.log(ec.ERROR, "misspolicy: bad config at offset " + p.i.toString() + ": " + p.err);
    return ec.DECLINE;
  }
  if (fallbackPrefixes.length > 0 && !(fallbackOrigin.startsWith("http://") || fallbackOrigin.startsWith("https://"))) {
    ec.log(ec.ERROR, "misspolicy: fallback_prefixes needs an absolute http(s) fallback_origin");
    return ec.DECLINE;
  }
  while (fallbackOrigin.endsWith("/")) fallbackOrigin = fallbackOrigin.slice(0, fallbackOrigin.length - 1);
  return ec.OK;
}

export function miss(): i32 {
  const path = ec.request.path();
  for (let i = 0; i < denyPrefixes.length; i++) {
    if (path.startsWith(denyPrefixes[i])) {
      ec.miss.respond(403, "forbidden\n");
      return ec.OK;
    }
  }
  if (ec.request.header("Authorization") !== null || hasCookie(ec.request.header("Cookie"))) {
    ec.miss.bypass();
  }
  for (let i = 0; i < fallbackPrefixes.length; i++) {
    if (path.startsWith(fallbackPrefixes[i])) {
      const q = ec.request.query();
      ec.miss.setOriginURL(fallbackOrigin + path + (q.length > 0 ? "?" + q : ""));
      break;
    }
  }
  ec.miss.setOriginHeader("X-Edge-Policy", "misspolicy");
  return ec.OK;
}

// hasCookie reports whether the Cookie header names one of bypassCookies.
function hasCookie(cookie: string | null): bool {
  if (cookie === null || bypassCookies.length == 0) return false;
  const pairs = cookie.split(";");
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i].trim();
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (bypassCookies.includes(name)) return true;
  }
  return false;
}

// Parser reads the config: an object whose values are strings or arrays of
// strings (other values are skipped).
class Parser {
  i: i32 = 0;
  err: string = "";
  constructor(public s: string) {}

  ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.i++;
    }
  }
  peek(): i32 {
    this.ws();
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }
  expect(c: i32): bool {
    if (this.peek() != c) {
      this.err = "expected '" + String.fromCharCode(c) + "'";
      return false;
    }
    this.i++;
    return true;
  }
  str(): string | null {
    if (!this.expect(0x22)) return null;
    let out = "";
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i++);
      if (c == 0x22) return out;
      if (c == 0x5c) {
        if (this.i >= this.s.length) break;
        const e = this.s.charCodeAt(this.i++);
        if (e == 0x6e) out += "\n";
        else if (e == 0x74) out += "\t";
        else out += String.fromCharCode(e);
        continue;
      }
      out += String.fromCharCode(c);
    }
    this.err = "unterminated string";
    return null;
  }
  strings(): string[] | null {
    const out: string[] = [];
    if (!this.expect(0x5b)) return null;
    if (this.peek() == 0x5d) {
      this.i++;
      return out;
    }
    while (true) {
      const v = this.str();
      if (v === null) return null;
      out.push(v);
      const c = this.peek();
      this.i++;
      if (c == 0x5d) return out;
      if (c != 0x2c) {
        this.err = "expected ',' or ']'";
        return null;
      }
    }
  }
  object(): bool {
    if (!this.expect(0x7b)) return false;
    if (this.peek() == 0x7d) {
      this.i++;
      return true;
    }
    while (true) {
      const k = this.str();
      if (k === null || !this.expect(0x3a)) return false;
      if (k == "fallback_origin") {
        const v = this.str();
        if (v === null) return false;
        fallbackOrigin = v;
      } else if (k == "fallback_prefixes" || k == "bypass_cookies" || k == "deny_prefixes") {
        const v = this.strings();
        if (v === null) return false;
        if (k == "fallback_prefixes") fallbackPrefixes = v;
        else if (k == "bypass_cookies") bypassCookies = v;
        else denyPrefixes = v;
      } else {
        this.err = "unknown field " + k;
        return false;
      }
      const c = this.peek();
      this.i++;
      if (c == 0x7d) return true;
      if (c != 0x2c) {
        this.err = "expected ',' or '}'";
        return false;
      }
    }
  }
}
