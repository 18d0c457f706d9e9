;; noabi: exports a key hook but declares no ABI version.
(module
  (memory (export "memory") 1)
  (func (export "key") (result i32) (i32.const 0)))
