;; fuzz: calls one host function with arguments taken from the request
;; header X-Fuzz, for FuzzHostFunctions. Byte 0 picks the function; the
;; little-endian i32s at bytes 4, 8, 12 and 16 are its arguments (a short
;; header leaves zeroes). The key hook returns 0 unless the call trapped.
(module
  (import "edgecache" "get_header" (func $get_header (param i32 i32 i32 i32) (result i32)))
  (import "edgecache" "get_method" (func $get_method (param i32 i32) (result i32)))
  (import "edgecache" "get_path" (func $get_path (param i32 i32) (result i32)))
  (import "edgecache" "get_query" (func $get_query (param i32 i32) (result i32)))
  (import "edgecache" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "edgecache" "get_response_header" (func $get_response_header (param i32 i32 i32 i32) (result i32)))
  (import "edgecache" "set_key" (func $set_key (param i32 i32)))
  (import "edgecache" "add_key_part" (func $add_key_part (param i32 i32)))
  (import "edgecache" "add_tag" (func $add_tag (param i32 i32)))
  (import "edgecache" "set_ttl" (func $set_ttl (param i64)))
  (import "edgecache" "set_origin_url" (func $set_origin_url (param i32 i32)))
  (import "edgecache" "respond" (func $respond (param i32 i32 i32)))
  (import "edgecache" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "x-fuzz")
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    ;; zero the argument area, then read the header into it
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 64))
    (drop (call $get_header (i32.const 256) (i32.const 6) (i32.const 0) (i32.const 64)))
    (local.set $a (i32.load (i32.const 4)))
    (local.set $b (i32.load (i32.const 8)))
    (local.set $c (i32.load (i32.const 12)))
    (local.set $d (i32.load (i32.const 16)))
    (block $done
      (block $f12 (block $f11 (block $f10 (block $f9 (block $f8 (block $f7 (block $f6
      (block $f5 (block $f4 (block $f3 (block $f2 (block $f1 (block $f0
        (br_table $f0 $f1 $f2 $f3 $f4 $f5 $f6 $f7 $f8 $f9 $f10 $f11 $f12
          (i32.rem_u (i32.load8_u (i32.const 0)) (i32.const 13))))
        (drop (call $get_header (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $done))
        (drop (call $get_method (local.get $a) (local.get $b))) (br $done))
        (drop (call $get_path (local.get $a) (local.get $b))) (br $done))
        (drop (call $get_query (local.get $a) (local.get $b))) (br $done))
        (drop (call $get_config (local.get $a) (local.get $b))) (br $done))
        (drop (call $get_response_header (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $done))
        (call $set_key (local.get $a) (local.get $b)) (br $done))
        (call $add_key_part (local.get $a) (local.get $b)) (br $done))
        (call $add_tag (local.get $a) (local.get $b)) (br $done))
        (call $set_ttl (i64.extend_i32_s (local.get $a))) (br $done))
        (call $set_origin_url (local.get $a) (local.get $b)) (br $done))
        (call $respond (local.get $a) (local.get $b) (local.get $c)) (br $done))
        (call $log (local.get $a) (local.get $b) (local.get $c)))
    (i32.const 0)))
