;; loop: the key hook never returns.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
