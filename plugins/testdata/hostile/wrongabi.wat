;; wrongabi: targets ABI v2, which this host does not implement.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v2"))
  (func (export "key") (result i32) (i32.const 0)))
