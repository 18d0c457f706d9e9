;; keyparts: extends the built-in key with the request's X-Device header
;; (add_key_part), and declines when there is none. For the adapter's
;; KeyExtend path and for header memoization.
(module
  (import "edgecache" "get_header" (func $get_header (param i32 i32 i32 i32) (result i32)))
  (import "edgecache" "add_key_part" (func $add_key_part (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-device")
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (local $n i32)
    (local.set $n (call $get_header (i32.const 0) (i32.const 8) (i32.const 1024) (i32.const 256)))
    (if (i32.lt_s (local.get $n) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.gt_s (local.get $n) (i32.const 256)) (then (return (i32.const 1))))
    (call $add_key_part (i32.const 1024) (local.get $n))
    (i32.const 0)))
