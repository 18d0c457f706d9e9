/*
 * ttlbystatus — a response plugin: how long to keep a response, by status
 * and content type, when the origin says nothing better.
 *
 *   - 5xx (and 1xx, 3xx other than 301/308): never stored.
 *   - 404 and 410: negative caching, 60 s, so a storm of requests for a
 *     missing page does not all reach the origin.
 *   - 200, 203, 204, 301, 308: by Content-Type — images, fonts, CSS, JS and
 *     video for a day; JSON for a minute; HTML for five minutes; anything
 *     else for ten. A response the origin gave its own lifetime
 *     (Cache-Control max-age/s-maxage, Expires) keeps it.
 *   - Cache-Control no-store or private: left to the built-in policy, which
 *     does not store it.
 *
 * Every stored response gets a stale-if-error window of an hour and a tag
 * "status:<code>" and "type:<major type>" for purges.
 */
#include "edgecache.h"

EDGECACHE_PLUGIN();

#define MINUTE 60
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static char buf[512];

static int64_t ttl_for_type(const char *ct, int32_t n) {
    if (ec_has_prefix_ci(ct, n, "image/") || ec_has_prefix_ci(ct, n, "font/") ||
        ec_has_prefix_ci(ct, n, "video/") || ec_has_prefix_ci(ct, n, "text/css") ||
        ec_has_prefix_ci(ct, n, "application/javascript") ||
        ec_has_prefix_ci(ct, n, "text/javascript"))
        return DAY;
    if (ec_has_prefix_ci(ct, n, "application/json")) return MINUTE;
    if (ec_has_prefix_ci(ct, n, "text/html")) return 5 * MINUTE;
    return 10 * MINUTE;
}

static const char *major_type(const char *ct, int32_t n, int32_t *len) {
    int32_t i = 0;
    while (i < n && ct[i] != '/' && ct[i] != ';') i++;
    *len = i;
    return ct;
}

static void tag_status(int32_t status) {
    char t[16] = "status:";
    t[7] = '0' + (status / 100) % 10;
    t[8] = '0' + (status / 10) % 10;
    t[9] = '0' + status % 10;
    ec_add_tag(t, 10);
}

EDGECACHE_HOOK(response) {
    int32_t status = ec_status();

    int32_t n = ec_response_header("cache-control", buf, sizeof buf);
    if (n > (int32_t)sizeof buf) n = sizeof buf; /* the first 512 bytes will do */
    if (n > 0 && (ec_contains_token_ci(buf, n, "no-store") || ec_contains_token_ci(buf, n, "private")))
        return EC_DECLINE;
    int origin_lifetime = n > 0 && (ec_contains_token_ci(buf, n, "max-age") || ec_contains_token_ci(buf, n, "s-maxage"));
    if (ec_response_header("expires", buf, sizeof buf) >= 0) origin_lifetime = 1;

    switch (status) {
    case 404:
    case 410:
        ec_set_ttl_s(MINUTE);
        tag_status(status);
        return EC_OK;
    case 200:
    case 203:
    case 204:
    case 301:
    case 308:
        break;
    default:
        ec_no_store_str(status >= 500 ? "server-error" : "status");
        return EC_OK;
    }

    if (!origin_lifetime) {
        n = ec_response_header("content-type", buf, sizeof buf);
        if (n > (int32_t)sizeof buf) n = sizeof buf;
        ec_set_ttl_s(n > 0 ? ttl_for_type(buf, n) : 10 * MINUTE);
    } else {
        int64_t ms = ec_default_ttl_ms();
        if (ms >= 0) ec_set_ttl_ms(ms); /* the origin's own lifetime */
    }
    ec_set_stale_if_error_ms((int64_t)HOUR * 1000);
    tag_status(status);

    n = ec_response_header("content-type", buf, sizeof buf);
    if (n > 0 && n <= (int32_t)sizeof buf) {
        static char tag[64] = "type:";
        int32_t len;
        const char *major = major_type(buf, n, &len);
        if (len > 0 && len < (int32_t)sizeof tag - 5) {
            for (int32_t i = 0; i < len; i++) {
                char c = major[i];
                tag[5 + i] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
            }
            ec_add_tag(tag, 5 + len);
        }
    }
    return EC_OK;
}
