//! The Rust SDK for edgecache policy plugins (ABI v1, see plugins/ABI.md).
//!
//! It hides the buffer protocol: `request::header("Accept")` returns an
//! `Option<String>`, `response::set_ttl(Duration::from_secs(300))` sets the
//! TTL. Only `std` is used; build for `wasm32-unknown-unknown`:
//!
//! ```text
//! cargo build --release --target wasm32-unknown-unknown
//! # or, without cargo (Debian's rustc and libstd-rust-dev-wasm32):
//! rustc --edition 2021 --crate-type rlib --target wasm32-unknown-unknown -O src/lib.rs
//! ```
//!
//! A plugin is a `cdylib` that invokes [`plugin!`] once and exports the hooks
//! it implements; each returns [`OK`] to apply what it set or [`DECLINE`] to
//! let the built-in policy decide:
//!
//! ```ignore
//! edgecache::plugin!();
//!
//! #[export_name = "key"]
//! pub extern "C" fn key() -> i32 {
//!     edgecache::key::set(&edgecache::request::path());
//!     edgecache::OK
//! }
//! ```

use std::time::Duration;

/// Apply what the hook set.
pub const OK: i32 = 0;
/// Let the built-in policy decide (from `init`: reject the config).
pub const DECLINE: i32 = 1;

/// Declares ABI v1 (exports `edgecache_abi_v1`). Invoke once per plugin.
#[macro_export]
macro_rules! plugin {
    () => {
        #[export_name = "edgecache_abi_v1"]
        pub extern "C" fn __edgecache_abi_v1() {}
    };
}

#[allow(dead_code)]
mod sys {
    #[link(wasm_import_module = "edgecache")]
    extern "C" {
        pub fn get_config(buf: *mut u8, limit: i32) -> i32;
        pub fn get_method(buf: *mut u8, limit: i32) -> i32;
        pub fn get_scheme(buf: *mut u8, limit: i32) -> i32;
        pub fn get_host(buf: *mut u8, limit: i32) -> i32;
        pub fn get_path(buf: *mut u8, limit: i32) -> i32;
        pub fn get_query(buf: *mut u8, limit: i32) -> i32;
        pub fn get_header(name: *const u8, name_len: i32, buf: *mut u8, limit: i32) -> i32;
        pub fn get_status() -> i32;
        pub fn get_response_header(name: *const u8, name_len: i32, buf: *mut u8, limit: i32) -> i32;
        pub fn get_default_ttl() -> i64;
        pub fn set_key(ptr: *const u8, len: i32);
        pub fn add_key_part(ptr: *const u8, len: i32);
        pub fn set_ttl(ms: i64);
        pub fn set_stale_while_revalidate(ms: i64);
        pub fn set_stale_if_error(ms: i64);
        pub fn add_tag(ptr: *const u8, len: i32);
        pub fn set_no_store(ptr: *const u8, len: i32);
        pub fn set_bypass();
        pub fn set_origin_url(ptr: *const u8, len: i32);
        pub fn set_origin_header(name: *const u8, name_len: i32, value: *const u8, value_len: i32);
        pub fn respond(status: i32, body: *const u8, len: i32);
        pub fn log(level: i32, ptr: *const u8, len: i32);
    }
}

/// Runs a buf/limit host function, retrying with a buffer of the returned
/// length when the value did not fit. `None` when the host returned -1.
fn read(get: impl Fn(*mut u8, i32) -> i32) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 512];
    loop {
        let n = get(buf.as_mut_ptr(), buf.len() as i32);
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return Some(buf);
        }
        buf.resize(n, 0);
    }
}

fn read_string(get: impl Fn(*mut u8, i32) -> i32) -> Option<String> {
    read(get).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The plugin's config, as given in the gateway config (by convention JSON).
pub fn config() -> Vec<u8> {
    read(|b, l| unsafe { sys::get_config(b, l) }).unwrap_or_default()
}

/// The client request (every hook; empty in `init`).
pub mod request {
    use super::*;

    /// The method, e.g. "GET".
    pub fn method() -> String {
        read_string(|b, l| unsafe { sys::get_method(b, l) }).unwrap_or_default()
    }
    /// "http" or "https".
    pub fn scheme() -> String {
        read_string(|b, l| unsafe { sys::get_scheme(b, l) }).unwrap_or_default()
    }
    /// The host, lower-case, without a default port.
    pub fn host() -> String {
        read_string(|b, l| unsafe { sys::get_host(b, l) }).unwrap_or_default()
    }
    /// The escaped path.
    pub fn path() -> String {
        read_string(|b, l| unsafe { sys::get_path(b, l) }).unwrap_or_default()
    }
    /// The raw query, without '?'.
    pub fn query() -> String {
        read_string(|b, l| unsafe { sys::get_query(b, l) }).unwrap_or_default()
    }
    /// A header's values joined by ", ", or `None` when absent.
    pub fn header(name: &str) -> Option<String> {
        read_string(|b, l| unsafe { sys::get_header(name.as_ptr(), name.len() as i32, b, l) })
    }
}

/// Results of the `key` hook.
pub mod key {
    use super::*;

    /// Sets the whole cache key.
    pub fn set(key: &str) {
        unsafe { sys::set_key(key.as_ptr(), key.len() as i32) }
    }
    /// Appends '|' and `part` to the key (the built-in one, or the one set).
    pub fn add_part(part: &str) {
        unsafe { sys::add_key_part(part.as_ptr(), part.len() as i32) }
    }
}

/// The origin response and the results of the `response` hook.
pub mod response {
    use super::*;

    /// The origin's status code.
    pub fn status() -> u16 {
        unsafe { sys::get_status() as u16 }
    }
    /// An origin response header's values joined by ", ", or `None`.
    pub fn header(name: &str) -> Option<String> {
        read_string(|b, l| unsafe { sys::get_response_header(name.as_ptr(), name.len() as i32, b, l) })
    }
    /// The built-in policy's TTL, or `None` when it would not store.
    pub fn default_ttl() -> Option<Duration> {
        let ms = unsafe { sys::get_default_ttl() };
        if ms < 0 {
            None
        } else {
            Some(Duration::from_millis(ms as u64))
        }
    }
    /// Stores the response, fresh for `d`.
    pub fn set_ttl(d: Duration) {
        unsafe { sys::set_ttl(ms(d)) }
    }
    /// Serve stale for `d` after the TTL while refreshing.
    pub fn set_stale_while_revalidate(d: Duration) {
        unsafe { sys::set_stale_while_revalidate(ms(d)) }
    }
    /// Serve stale for `d` after the TTL when the origin fails.
    pub fn set_stale_if_error(d: Duration) {
        unsafe { sys::set_stale_if_error(ms(d)) }
    }
    /// Adds a surrogate key for purges.
    pub fn add_tag(tag: &str) {
        unsafe { sys::add_tag(tag.as_ptr(), tag.len() as i32) }
    }
    /// Do not store the response.
    pub fn no_store(reason: &str) {
        unsafe { sys::set_no_store(reason.as_ptr(), reason.len() as i32) }
    }
}

/// Results of the `miss` hook.
pub mod miss {
    use super::*;

    /// Fetch from the origin without storing the response.
    pub fn bypass() {
        unsafe { sys::set_bypass() }
    }
    /// Fetch this absolute URL instead of the route's origin.
    pub fn set_origin_url(url: &str) {
        unsafe { sys::set_origin_url(url.as_ptr(), url.len() as i32) }
    }
    /// Sets a header on the origin request.
    pub fn set_origin_header(name: &str, value: &str) {
        unsafe { sys::set_origin_header(name.as_ptr(), name.len() as i32, value.as_ptr(), value.len() as i32) }
    }
    /// Answers the client directly.
    pub fn respond(status: u16, body: &[u8]) {
        unsafe { sys::respond(status as i32, body.as_ptr(), body.len() as i32) }
    }
}

/// Log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Writes a line to the gateway's log (rate-limited by the host).
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}
