;; recurse: the key hook recurses until the stack overflows.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "key") (result i32) (call $down (i32.const 0))))
