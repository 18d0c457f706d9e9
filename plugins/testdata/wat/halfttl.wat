;; halfttl: a response hook that adjusts the built-in decision instead of
;; replacing it: half the built-in TTL, rounded down to whole seconds
;; (get_builtin_ttl), the built-in stale-while-revalidate kept, and a tag.
;; It declines when the built-in policy would not store the response, so
;; that a refusal stays a refusal. A built-in TTL under 2 s halves to 0,
;; which the gateway does not store ("expired").
(module
  (import "edgecache" "get_builtin_ttl" (func $get_builtin_ttl (result i64)))
  (import "edgecache" "set_ttl" (func $set_ttl (param i64)))
  (import "edgecache" "add_tag" (func $add_tag (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "halved")
  (func (export "edgecache_abi_v1"))
  (func (export "response") (result i32)
    (local $ttl i64)
    (local.set $ttl (call $get_builtin_ttl))
    (if (i64.lt_s (local.get $ttl) (i64.const 0)) (then (return (i32.const 1))))
    (call $set_ttl (i64.mul (i64.div_u (local.get $ttl) (i64.const 2000)) (i64.const 1000)))
    (call $add_tag (i32.const 0) (i32.const 6))
    (i32.const 0)))
