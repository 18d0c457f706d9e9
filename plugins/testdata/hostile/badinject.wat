;; badinject: the miss hook tries to inject a header through CR LF.
(module
  (import "edgecache" "set_origin_header" (func $h (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-A")
  (data (i32.const 16) "v\0d\0aX-Evil: 1")
  (func (export "edgecache_abi_v1"))
  (func (export "miss") (result i32)
    (call $h (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 13))
    (i32.const 0)))
