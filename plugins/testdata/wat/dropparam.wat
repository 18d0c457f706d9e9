;; dropparam: the built-in key minus one query parameter. The key hook
;; reads the built-in key (get_builtin_key) and copies it without the
;; pieces named "drop" ("drop=…" or a bare "drop"), keeping every other
;; piece, and its order, byte for byte; with no piece left the '?' goes
;; too. It declines for keys longer than its 2 KiB buffer. Written by hand
;; from ABI.md, as a plugin author would.
(module
  (import "edgecache" "get_builtin_key" (func $get_builtin_key (param i32 i32) (result i32)))
  (import "edgecache" "set_key" (func $set_key (param i32 i32)))
  (memory (export "memory") 1)
  ;; in: [0, 2048)   out: [4096, 6144)
  (func (export "edgecache_abi_v1"))

  ;; dropped reports whether the piece [p, e) is named "drop".
  (func $dropped (param $p i32) (param $e i32) (result i32)
    (if (i32.lt_u (i32.sub (local.get $e) (local.get $p)) (i32.const 4)) (then (return (i32.const 0))))
    ;; "drop" little-endian is 0x706f7264
    (if (i32.ne (i32.load (local.get $p)) (i32.const 0x706f7264)) (then (return (i32.const 0))))
    (if (i32.eq (i32.sub (local.get $e) (local.get $p)) (i32.const 4)) (then (return (i32.const 1))))
    (i32.eq (i32.load8_u (i32.add (local.get $p) (i32.const 4))) (i32.const 61))) ;; '='

  (func (export "key") (result i32)
    (local $n i32) (local $i i32) (local $o i32) (local $q i32) (local $p i32) (local $e i32) (local $first i32)
    (local.set $n (call $get_builtin_key (i32.const 0) (i32.const 2048)))
    (if (i32.gt_u (local.get $n) (i32.const 2048)) (then (return (i32.const 1))))
    ;; copy up to the '?' (none: the key as is)
    (local.set $o (i32.const 4096))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (br_if $done (i32.eq (i32.load8_u (local.get $i)) (i32.const 63))) ;; '?'
        (i32.store8 (local.get $o) (i32.load8_u (local.get $i)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (if (i32.lt_u (local.get $i) (local.get $n))
      (then
        (local.set $q (local.get $o)) ;; where the '?' goes
        (local.set $first (i32.const 1))
        (local.set $p (i32.add (local.get $i) (i32.const 1)))
        (block $end
          (loop $piece
            (br_if $end (i32.gt_u (local.get $p) (local.get $n)))
            ;; e = end of this piece
            (local.set $e (local.get $p))
            (block $found
              (loop $find
                (br_if $found (i32.ge_u (local.get $e) (local.get $n)))
                (br_if $found (i32.eq (i32.load8_u (local.get $e)) (i32.const 38))) ;; '&'
                (local.set $e (i32.add (local.get $e) (i32.const 1)))
                (br $find)))
            (if (i32.eqz (call $dropped (local.get $p) (local.get $e)))
              (then
                ;; '?' before the first kept piece, '&' before the others
                (i32.store8 (local.get $o) (select (i32.const 63) (i32.const 38) (local.get $first)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (local.set $first (i32.const 0))
                (memory.copy (local.get $o) (local.get $p) (i32.sub (local.get $e) (local.get $p)))
                (local.set $o (i32.add (local.get $o) (i32.sub (local.get $e) (local.get $p))))))
            (local.set $p (i32.add (local.get $e) (i32.const 1)))
            (br $piece)))))
    (call $set_key (i32.const 4096) (i32.sub (local.get $o) (i32.const 4096)))
    (i32.const 0)))
