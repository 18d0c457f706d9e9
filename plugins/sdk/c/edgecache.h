/*
 * edgecache.h — the C SDK for edgecache policy plugins (ABI v1, see
 * plugins/ABI.md). One header, no allocation, no libc needed.
 *
 * A plugin defines the hooks it implements with EDGECACHE_HOOK and declares
 * the ABI version once with EDGECACHE_PLUGIN():
 *
 *     #include "edgecache.h"
 *     EDGECACHE_PLUGIN();
 *
 *     EDGECACHE_HOOK(key) {
 *         char path[512];
 *         int n = ec_path(path, sizeof path);
 *         if (n < 0 || n > (int)sizeof path) return EC_DECLINE;
 *         ec_set_key(path, n);
 *         return EC_OK;
 *     }
 *
 * Build (Debian: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32):
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -o plugin.wasm plugin.c
 *
 * Strings are (pointer, length), never NUL-terminated. Functions that read a
 * value take a buffer and its size and return the value's real length: when
 * that is larger than the buffer, nothing was written — retry with a larger
 * buffer. A header that is absent returns -1.
 */
#ifndef EDGECACHE_H
#define EDGECACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EC_IMPORT(name) __attribute__((import_module("edgecache"), import_name(#name)))

/* Hook results. */
#define EC_OK 0      /* apply what the hook set */
#define EC_DECLINE 1 /* let the built-in policy decide (init: reject the config) */

/* Log levels. */
#define EC_DEBUG 0
#define EC_INFO 1
#define EC_WARN 2
#define EC_ERROR 3

/* Declares ABI v1. Use once per plugin. */
#define EDGECACHE_PLUGIN() \
    __attribute__((export_name("edgecache_abi_v1"))) void edgecache_abi_v1(void) {}

/* Defines hook NAME (key, response, miss or init). */
#define EDGECACHE_HOOK(name) \
    __attribute__((export_name(#name))) int32_t ec_hook_##name(void)

/* ---- the built-in policy's answer (ABI.md, "The built-in key and decisions") ---- */
EC_IMPORT(get_builtin_key) int32_t ec_builtin_key(void *buf, int32_t limit);
EC_IMPORT(get_builtin_ttl) int64_t ec_builtin_ttl(void); /* ms, -1: would not store */
EC_IMPORT(get_builtin_stale_while_revalidate) int64_t ec_builtin_stale_while_revalidate(void);
EC_IMPORT(get_builtin_stale_if_error) int64_t ec_builtin_stale_if_error(void);
EC_IMPORT(get_builtin_no_store_reason) int32_t ec_builtin_no_store_reason(void *buf, int32_t limit);
EC_IMPORT(get_builtin_bypass) int32_t ec_builtin_bypass(void);
EC_IMPORT(get_builtin_origin_url) int32_t ec_builtin_origin_url(void *buf, int32_t limit);

/* ---- reading (every hook) ---- */
EC_IMPORT(get_config) int32_t ec_config(void *buf, int32_t limit);
EC_IMPORT(get_method) int32_t ec_method(void *buf, int32_t limit);
EC_IMPORT(get_scheme) int32_t ec_scheme(void *buf, int32_t limit);
EC_IMPORT(get_host) int32_t ec_host(void *buf, int32_t limit);
EC_IMPORT(get_path) int32_t ec_path(void *buf, int32_t limit);
EC_IMPORT(get_query) int32_t ec_query(void *buf, int32_t limit);
EC_IMPORT(get_header) int32_t ec_header_n(const char *name, int32_t name_len, void *buf, int32_t limit);

/* ---- reading (response hook) ---- */
EC_IMPORT(get_status) int32_t ec_status(void);
EC_IMPORT(get_response_header) int32_t ec_response_header_n(const char *name, int32_t name_len, void *buf, int32_t limit);
/* The built-in policy's TTL in ms, or -1 when it would not store. */
EC_IMPORT(get_default_ttl) int64_t ec_default_ttl_ms(void);

/* ---- results of key ---- */
EC_IMPORT(set_key) void ec_set_key(const void *key, int32_t len);
EC_IMPORT(add_key_part) void ec_add_key_part(const void *part, int32_t len);

/* ---- results of response ---- */
EC_IMPORT(set_ttl) void ec_set_ttl_ms(int64_t ms);
EC_IMPORT(set_stale_while_revalidate) void ec_set_stale_while_revalidate_ms(int64_t ms);
EC_IMPORT(set_stale_if_error) void ec_set_stale_if_error_ms(int64_t ms);
EC_IMPORT(add_tag) void ec_add_tag(const void *tag, int32_t len);
EC_IMPORT(set_no_store) void ec_set_no_store(const void *reason, int32_t len);

/* ---- results of miss ---- */
EC_IMPORT(set_bypass) void ec_set_bypass(void);
EC_IMPORT(set_origin_url) void ec_set_origin_url(const void *url, int32_t len);
EC_IMPORT(set_origin_header) void ec_set_origin_header(const char *name, int32_t name_len, const void *value, int32_t value_len);
EC_IMPORT(respond) void ec_respond(int32_t status, const void *body, int32_t len);

/* ---- any hook ---- */
EC_IMPORT(log) void ec_log(int32_t level, const void *msg, int32_t len);

/* ---- helpers for NUL-terminated literals ---- */
static inline int32_t ec_strlen(const char *s) {
    int32_t n = 0;
    while (s[n]) n++;
    return n;
}
static inline int32_t ec_header(const char *name, void *buf, int32_t limit) {
    return ec_header_n(name, ec_strlen(name), buf, limit);
}
static inline int32_t ec_response_header(const char *name, void *buf, int32_t limit) {
    return ec_response_header_n(name, ec_strlen(name), buf, limit);
}
static inline void ec_log_str(int32_t level, const char *msg) { ec_log(level, msg, ec_strlen(msg)); }
static inline void ec_tag_str(const char *tag) { ec_add_tag(tag, ec_strlen(tag)); }
static inline void ec_no_store_str(const char *reason) { ec_set_no_store(reason, ec_strlen(reason)); }
static inline void ec_set_ttl_s(int64_t s) { ec_set_ttl_ms(s * 1000); }

/* ec_has_prefix_ci reports whether s[0:n) starts with the lower-case
 * literal prefix, ignoring ASCII case. */
static inline int ec_has_prefix_ci(const char *s, int32_t n, const char *prefix) {
    for (int32_t i = 0; prefix[i]; i++) {
        if (i >= n) return 0;
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c != prefix[i]) return 0;
    }
    return 1;
}

/* ec_contains_token_ci reports whether the comma-separated list s[0:n)
 * (a Cache-Control value, say) has the lower-case token, ignoring case and
 * anything after '=' in each element. */
static inline int ec_contains_token_ci(const char *s, int32_t n, const char *token) {
    int32_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
        int32_t start = i;
        while (i < n && s[i] != ',' && s[i] != '=' && s[i] != ' ') i++;
        int32_t len = i - start, j = 0;
        for (; j < len && token[j]; j++) {
            char c = s[start + j];
            if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
            if (c != token[j]) break;
        }
        if (j == len && token[j] == 0) return 1;
        while (i < n && s[i] != ',') i++;
    }
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* EDGECACHE_H */
