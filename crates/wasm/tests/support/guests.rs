//! Test guests, built from source at test time by real toolchains: WAT through the `wat`
//! crate, and components through `wit-component` (the core module plus the
//! `wasi:http/proxy@0.2.12` WIT in `tests/guests/wit`, componentized exactly as
//! `wasm-tools component new` would).

use std::path::PathBuf;

/// Imports and helpers shared by every WAT component: `$respond` (status, JSON body),
/// `$log` (a line to stdout), `$read_body` (the whole request body) and a bump `cabi_realloc`.
const PRELUDE: &str = r#"
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.append" (func $fields_append (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code" (func $set_status (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-body.stream" (func $in_stream (param i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read" (func $read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_out (param i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]input-stream" (func $drop_in (param i32)))
  (import "wasi:cli/stdout@0.2.12" "get-stdout" (func $stdout (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                                                          (i32.mul (memory.size) (i32.const 65536)))
                                                   (i32.const 16))
                                        (i32.const 1))))))
    (local.get $p))
  (func $log (param $ptr i32) (param $len i32)
    (local $s i32)
    (local.set $s (call $stdout))
    (call $write (local.get $s) (local.get $ptr) (local.get $len) (i32.const 16))
    (call $drop_out (local.get $s)))
  (func $respond (param $out i32) (param $status i32) (param $ptr i32) (param $len i32)
    (local $fields i32) (local $resp i32) (local $body i32) (local $s i32) (local $off i32) (local $n i32)
    (local.set $fields (call $fields_new))
    (call $fields_append (local.get $fields) (i32.const 1024) (i32.const 12) (i32.const 1040) (i32.const 16) (i32.const 16))
    (local.set $resp (call $resp_new (local.get $fields)))
    (drop (call $set_status (local.get $resp) (local.get $status)))
    (call $resp_body (local.get $resp) (i32.const 16))
    (local.set $body (i32.load (i32.const 20)))
    (call $outparam_set (local.get $out) (i32.const 0) (local.get $resp)
                        (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (i32.const 16))
    (local.set $s (i32.load (i32.const 20)))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $off) (local.get $len)))
      (local.set $n (i32.sub (local.get $len) (local.get $off)))
      (if (i32.gt_u (local.get $n) (i32.const 4096)) (then (local.set $n (i32.const 4096))))
      (call $write (local.get $s) (i32.add (local.get $ptr) (local.get $off)) (local.get $n) (i32.const 16))
      (local.set $off (i32.add (local.get $off) (local.get $n)))
      (br $more)))
    (call $drop_out (local.get $s))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 16)))
  (func $read_body (param $req i32) (result i32 i32)
    (local $body i32) (local $s i32) (local $start i32) (local $end i32)
    (call $consume (local.get $req) (i32.const 16))
    (local.set $body (i32.load (i32.const 20)))
    (call $in_stream (local.get $body) (i32.const 16))
    (local.set $s (i32.load (i32.const 20)))
    (local.set $start (i32.const -1))
    (block $done (loop $more
      (call $read (local.get $s) (i64.const 65536) (i32.const 16))
      (br_if $done (i32.ne (i32.load8_u (i32.const 16)) (i32.const 0)))
      (if (i32.gt_u (i32.load (i32.const 24)) (i32.const 0)) (then
        (if (i32.eq (local.get $start) (i32.const -1)) (then (local.set $start (i32.load (i32.const 20)))))
        (local.set $end (i32.add (i32.load (i32.const 20)) (i32.load (i32.const 24))))))
      (br $more)))
    (call $drop_in (local.get $s))
    (if (i32.eq (local.get $start) (i32.const -1)) (then (return (i32.const 0) (i32.const 0))))
    (local.get $start) (i32.sub (local.get $end) (local.get $start)))
  (data (i32.const 1024) "content-type")
  (data (i32.const 1040) "application/json")
"#;

const HANDLE: &str = r#"(export "wasi:http/incoming-handler@0.2.12#handle")"#;

fn wit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guests/wit")
}

/// A `wasi:http/proxy` component whose handler body is `handler` (WAT instructions with
/// `$req` and `$out` in scope), plus extra module fields (one import per line).
pub fn component(fields: &str, handler: &str) -> Vec<u8> {
    // WAT wants imports before any definition: hoist the caller's import lines.
    let (imports, rest): (Vec<&str>, Vec<&str>) = fields
        .lines()
        .partition(|l| l.trim_start().starts_with("(import"));
    let (imports, rest) = (imports.join("\n"), rest.join("\n"));
    let wat = format!(
        "(module {imports} {PRELUDE} {rest} (func {HANDLE} (param $req i32) (param $out i32) {handler}))"
    );
    let mut module = wat::parse_str(&wat).expect("component WAT parses");
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit_dir()).expect("WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("guest"))
        .expect("world exists");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module is accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// Says hello in its log and answers `"hello from wasm"`.
pub fn hello() -> Vec<u8> {
    component(
        r#"(data (i32.const 2048) "hello log line\n") (data (i32.const 2100) "\"hello from wasm\"")"#,
        "(call $log (i32.const 2048) (i32.const 15))
         (call $respond (local.get $out) (i32.const 200) (i32.const 2100) (i32.const 17))",
    )
}

/// Writes `lines` log lines of 100 bytes (99 `x` and a newline), then answers `"ok"`.
pub fn chatty(lines: u32) -> Vec<u8> {
    component(
        &format!(
            r#"(data (i32.const 2048) "{}\n") (data (i32.const 2200) "\"ok\"")"#,
            "x".repeat(99)
        ),
        &format!(
            "(local $i i32)
             (block $done (loop $more
               (br_if $done (i32.ge_u (local.get $i) (i32.const {lines})))
               (call $log (i32.const 2048) (i32.const 100))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br $more)))
             (call $respond (local.get $out) (i32.const 200) (i32.const 2200) (i32.const 4))"
        ),
    )
}

/// Answers with the request body.
pub fn echo() -> Vec<u8> {
    component(
        "",
        "(local $p i32) (local $n i32)
         (call $read_body (local.get $req)) (local.set $n) (local.set $p)
         (call $respond (local.get $out) (i32.const 200) (local.get $p) (local.get $n))",
    )
}

/// Counts its requests in a global and in linear memory and answers both counts: `[g,m]`.
/// With a fresh instance per request the answer is always `[1,1]`.
pub fn counter() -> Vec<u8> {
    component(
        r#"(global $count (mut i32) (i32.const 0)) (data (i32.const 3000) "[0,0]")"#,
        "(global.set $count (i32.add (global.get $count) (i32.const 1)))
         (i32.store (i32.const 4000) (i32.add (i32.load (i32.const 4000)) (i32.const 1)))
         (i32.store8 (i32.const 3001) (i32.add (i32.const 48) (global.get $count)))
         (i32.store8 (i32.const 3003) (i32.add (i32.const 48) (i32.load (i32.const 4000))))
         (call $respond (local.get $out) (i32.const 200) (i32.const 3000) (i32.const 5))",
    )
}

/// Spins forever.
pub fn spin() -> Vec<u8> {
    component("", "(loop $forever (br $forever))")
}

/// How [`stream_slowly`] ends after its pause.
#[derive(Clone, Copy, Debug)]
pub enum StreamEnd {
    /// Writes `second\n` and finishes the body.
    Finish,
    /// Traps with `unreachable`, its body unfinished.
    Trap,
    /// Pauses for an hour (past any timeout).
    Hang,
}

/// Sends its head and `first\n` at once, pauses `pause_ms` (blocking on a
/// `wasi:clocks` pollable, as a guest waiting for data would), then ends as `end` says.
pub fn stream_slowly(pause_ms: u64, end: StreamEnd) -> Vec<u8> {
    let ending = match end {
        StreamEnd::Finish => {
            "(call $write (local.get $s) (i32.const 2056) (i32.const 7) (i32.const 16))
             (call $drop_out (local.get $s))
             (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 16))"
        }
        StreamEnd::Trap => "unreachable",
        StreamEnd::Hang => "(call $nap (i64.const 3600000000000))",
    };
    component(
        r#"(import "wasi:clocks/monotonic-clock@0.2.12" "subscribe-duration" (func $subscribe (param i64) (result i32)))
           (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
           (import "wasi:io/poll@0.2.12" "[resource-drop]pollable" (func $drop_poll (param i32)))
           (data (i32.const 2048) "first\n") (data (i32.const 2056) "second\n")
           (func $nap (param $ns i64) (local $p i32)
             (local.set $p (call $subscribe (local.get $ns)))
             (call $block (local.get $p))
             (call $drop_poll (local.get $p)))"#,
        &format!(
            "(local $resp i32) (local $body i32) (local $s i32)
             (local.set $resp (call $resp_new (call $fields_new)))
             (call $resp_body (local.get $resp) (i32.const 16))
             (local.set $body (i32.load (i32.const 20)))
             (call $outparam_set (local.get $out) (i32.const 0) (local.get $resp)
                                 (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
             (call $body_write (local.get $body) (i32.const 16))
             (local.set $s (i32.load (i32.const 20)))
             (call $write (local.get $s) (i32.const 2048) (i32.const 6) (i32.const 16))
             (call $nap (i64.const {pause_ns}))
             {ending}",
            pause_ns = pause_ms * 1_000_000
        ),
    )
}

/// Traps with `unreachable`.
pub fn trap() -> Vec<u8> {
    component("", "unreachable")
}

/// Grows its memory 1 MiB at a time until refused, then traps (as an allocator would on
/// a failed allocation).
pub fn grow() -> Vec<u8> {
    component(
        "",
        "(block $refused (loop $more
           (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
           (br $more)))
         unreachable",
    )
}

/// Answers `500` with a plain-text body.
pub fn fail_500() -> Vec<u8> {
    component(
        r#"(data (i32.const 2048) "boom")"#,
        "(call $respond (local.get $out) (i32.const 500) (i32.const 2048) (i32.const 4))",
    )
}

/// Sends `GET http://<authority>/` through `wasi:http/outgoing-handler` and answers `200`
/// `"reached"` if a response came back, `502` `"denied"` otherwise.
pub fn outbound(authority: &str) -> Vec<u8> {
    let len = authority.len();
    let fields = format!(
        r#"
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request" (func $req_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-scheme" (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-authority" (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-path-with-query" (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle" (func $send (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.get" (func $get (param i32 i32)))
  (data (i32.const 2048) "{authority}")
  (data (i32.const 2300) "/")
  (data (i32.const 2400) "\"reached\"")
  (data (i32.const 2500) "\"denied\"")
"#
    );
    let handler = format!(
        "(local $r i32) (local $f i32)
         (local.set $r (call $req_new (call $fields_new)))
         (drop (call $set_scheme (local.get $r) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
         (drop (call $set_authority (local.get $r) (i32.const 1) (i32.const 2048) (i32.const {len})))
         (drop (call $set_path (local.get $r) (i32.const 1) (i32.const 2300) (i32.const 1)))
         (call $send (local.get $r) (i32.const 0) (i32.const 0) (i32.const 64))
         (if (i32.ne (i32.load8_u (i32.const 64)) (i32.const 0)) (then
           (call $respond (local.get $out) (i32.const 502) (i32.const 2500) (i32.const 8))
           (return)))
         (local.set $f (i32.load (i32.const 72)))
         (call $block (call $subscribe (local.get $f)))
         (call $get (local.get $f) (i32.const 64))
         (if (i32.and (i32.eq (i32.load8_u (i32.const 64)) (i32.const 1))
                      (i32.and (i32.eqz (i32.load8_u (i32.const 72)))
                               (i32.eqz (i32.load8_u (i32.const 80)))))
           (then (call $respond (local.get $out) (i32.const 200) (i32.const 2400) (i32.const 9)))
           (else (call $respond (local.get $out) (i32.const 502) (i32.const 2500) (i32.const 8))))"
    );
    component(&fields, &handler)
}

/// A WAGI module: CGI headers, then every environment variable (one per line), `---`, and
/// the request body from stdin; logs a line to stderr. Exits with `exit_code` (0: returns
/// normally).
pub fn cgi_env_dump(exit_code: i32) -> Vec<u8> {
    let exit = if exit_code == 0 {
        String::new()
    } else {
        format!("(call $exit (i32.const {exit_code}))")
    };
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 4)
  (data (i32.const 1024) "Content-Type: text/plain\nX-Gust-Test: cgi\n\n")
  (data (i32.const 1100) "\n---\n")
  (data (i32.const 1200) "cgi log line\n")
  (func $out (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (local $size i32) (local $i i32) (local $n i32)
    (call $out (i32.const 2) (i32.const 1200) (i32.const 13))
    (call $out (i32.const 1) (i32.const 1024) (i32.const 43))
    (drop (call $env_sizes (i32.const 32) (i32.const 36)))
    (local.set $size (i32.load (i32.const 36)))
    (drop (call $env_get (i32.const 4096) (i32.const 65536)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
      (if (i32.eqz (i32.load8_u (i32.add (i32.const 65536) (local.get $i))))
        (then (i32.store8 (i32.add (i32.const 65536) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (call $out (i32.const 1) (i32.const 65536) (local.get $size))
    (call $out (i32.const 1) (i32.const 1100) (i32.const 5))
    (i32.store (i32.const 16) (i32.const 131072))
    (i32.store (i32.const 20) (i32.const 65536))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $out (i32.const 1) (i32.const 131072) (i32.load (i32.const 24)))
    {exit})
)"#
    );
    wat::parse_str(&wat).expect("CGI WAT parses")
}
