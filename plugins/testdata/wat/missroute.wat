;; missroute: a miss hook. Paths under /m/private/ bypass the cache
;; (set_bypass: fetched, not stored; the response hook still runs, its
;; decision unused), /m/gone answers 410 itself (respond: never stored),
;; and the rest is the built-in action, read back with get_builtin_bypass
;; (a miss hook that changes nothing declines).
(module
  (import "edgecache" "get_path" (func $get_path (param i32 i32) (result i32)))
  (import "edgecache" "get_builtin_bypass" (func $get_builtin_bypass (result i32)))
  (import "edgecache" "set_bypass" (func $set_bypass))
  (import "edgecache" "respond" (func $respond (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/m/private/")  ;; 11 bytes
  (data (i32.const 16) "/m/gone")     ;; 7 bytes
  (data (i32.const 32) "gone\n")      ;; 5 bytes
  (func (export "edgecache_abi_v1"))
  ;; $prefix reports whether the path at 1024 (n bytes) starts with [p, p+k).
  (func $prefix (param $n i32) (param $p i32) (param $k i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $n) (local.get $k)) (then (return (i32.const 0))))
    (block $no
      (loop $cmp
        (if (i32.ge_u (local.get $i) (local.get $k)) (then (return (i32.const 1))))
        (br_if $no (i32.ne (i32.load8_u (i32.add (i32.const 1024) (local.get $i)))
                           (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $cmp)))
    (i32.const 0))
  (func (export "miss") (result i32)
    (local $n i32)
    (local.set $n (call $get_path (i32.const 1024) (i32.const 1024)))
    (if (i32.gt_u (local.get $n) (i32.const 1024)) (then (return (i32.const 1))))
    (if (call $prefix (local.get $n) (i32.const 0) (i32.const 11))
      (then (call $set_bypass) (return (i32.const 0))))
    (if (i32.and (i32.eq (local.get $n) (i32.const 7)) (call $prefix (local.get $n) (i32.const 16) (i32.const 7)))
      (then (call $respond (i32.const 410) (i32.const 32) (i32.const 5)) (return (i32.const 0))))
    ;; the built-in action is kept: decline unless it already bypasses
    (i32.ne (call $get_builtin_bypass) (i32.const 0))
    (if (then (return (i32.const 0))))
    (i32.const 1)))
