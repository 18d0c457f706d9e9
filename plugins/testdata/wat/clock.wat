;; clock: a key hook that reads the wall clock (WASI clock_time_get,
;; REALTIME) and names the entry by path: its results must not be memoized.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "edgecache" "get_path" (func $get_path (param i32 i32) (result i32)))
  (import "edgecache" "set_key" (func $set_key (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (local $n i32)
    (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 0)))
    (local.set $n (call $get_path (i32.const 1024) (i32.const 1024)))
    (if (i32.gt_u (local.get $n) (i32.const 1024)) (then (return (i32.const 1))))
    (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
    (call $set_key (i32.const 1024) (local.get $n))
    (i32.const 0)))
