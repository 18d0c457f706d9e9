;; nohooks: declares ABI v1 but exports none of the hooks.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "keys") (result i32) (i32.const 0)))
