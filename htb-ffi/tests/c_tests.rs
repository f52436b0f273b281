//! Drives the C side of the ABI from `cargo test`: compiles include/htb.h as
//! C and C++, builds the C test programs (htb-ffi/tests/c/shaper_test.c,
//! fib_test.c, reasm_test.c), examples/c/shaper.c, route.c and reasm.c and
//! htb-ffi/bench/shaper_bench.c against the library cargo just built, runs
//! them (each test program against libhtb.a, under valgrind when it is on
//! PATH, and again linked `-lhtb` to libhtb.so), and installs into a
//! temporary prefix to check the pkg-config line.
//!
//! `CC` / `CXX` pick the compilers (default `cc` / `c++`); `HTB_NO_VALGRIND=1`
//! skips valgrind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Linux link line for libhtb.a, from `--print native-static-libs`.
const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

const CFLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Where cargo left libhtb.a / libhtb.so: `cargo test` keeps them in
/// target/<profile>/deps (next to this test binary) and does not uplift them
/// to target/<profile> as `cargo build` does.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().expect("profile dir").to_path_buf(),
    ] {
        if dir.join("libhtb.a").exists() {
            return dir;
        }
    }
    panic!(
        "libhtb.a not found in {} or its parent: run `cargo build -p htb-ffi` first \
         (scripts/test.sh does)",
        deps.display()
    );
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("htb-ffi-c");
    std::fs::create_dir_all(&d).expect("create tmp dir");
    d
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

fn on_path(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    print!("{stdout}");
    eprint!("{stderr}");
    out
}

/// Compiles `sources` into `name` against the static library.
fn build_static(name: &str, sources: &[PathBuf], extra: &[&str]) -> PathBuf {
    let exe = out_dir().join(name);
    let mut cmd = Command::new(tool("CC", "cc"));
    cmd.args(CFLAGS)
        .arg("-I")
        .arg(workspace().join("include"))
        .args(sources)
        .args(extra)
        .arg(lib_dir().join("libhtb.a"))
        .args(STATIC_LIBS)
        .arg("-o")
        .arg(&exe);
    run(&mut cmd);
    exe
}

#[test]
fn header_compiles_as_c_and_cxx() {
    let header = workspace().join("include/htb.h");
    run(Command::new(tool("CC", "cc"))
        .args(CFLAGS)
        .args(["-fsyntax-only", "-x", "c"])
        .arg(&header));
    run(Command::new(tool("CXX", "c++"))
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-x",
            "c++",
        ])
        .arg(&header));
}

/// Builds `htb-ffi/tests/c/NAME.c` against the static library and runs it
/// from the workspace root, then again under valgrind.
fn c_test_static_and_valgrind(name: &str) {
    let exe = build_static(
        name,
        &[workspace().join(format!("htb-ffi/tests/c/{name}.c"))],
        &[],
    );
    run(Command::new(&exe).current_dir(workspace()));
    if std::env::var_os("HTB_NO_VALGRIND").is_some() {
        eprintln!("valgrind skipped: HTB_NO_VALGRIND is set");
    } else if !on_path("valgrind") {
        eprintln!("valgrind skipped: not on PATH");
    } else {
        run(Command::new("valgrind")
            .args(["--error-exitcode=1", "--leak-check=full", "--quiet"])
            .arg(&exe)
            .current_dir(workspace()));
    }
}

#[test]
fn c_shaper_test_static_and_valgrind() {
    c_test_static_and_valgrind("shaper_test");
}

#[test]
fn c_fib_test_static_and_valgrind() {
    c_test_static_and_valgrind("fib_test");
}

#[test]
fn c_reasm_test_static_and_valgrind() {
    c_test_static_and_valgrind("reasm_test");
}

/// Builds `htb-ffi/tests/c/NAME.c` against the shared library (`-lhtb`, as
/// an installed libhtb is linked) and runs it.
fn c_test_shared(name: &str) {
    let exe = out_dir().join(format!("{name}_shared"));
    let lib = lib_dir();
    assert!(lib.join("libhtb.so").exists(), "libhtb.so not built");
    run(Command::new(tool("CC", "cc"))
        .args(CFLAGS)
        .arg("-I")
        .arg(workspace().join("include"))
        .arg(workspace().join(format!("htb-ffi/tests/c/{name}.c")))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lhtb")
        .arg("-o")
        .arg(&exe));
    run(Command::new(&exe).current_dir(workspace()));
}

#[test]
fn c_shaper_test_shared() {
    c_test_shared("shaper_test");
}

#[test]
fn c_fib_test_shared() {
    c_test_shared("fib_test");
}

#[test]
fn c_reasm_test_shared() {
    c_test_shared("reasm_test");
}

#[test]
fn c_example_shaper_runs() {
    let exe = build_static(
        "shaper_example",
        &[workspace().join("examples/c/shaper.c")],
        &[],
    );
    // The default script, 2 s of virtual time.
    let out = run(Command::new(&exe)
        .args(["examples/three-level.tc", "2"])
        .current_dir(workspace()));
    let text = String::from_utf8_lossy(&out.stdout);
    for class in ["1:10", "1:11", "1:12"] {
        assert!(text.contains(class), "no line for {class}:\n{text}");
    }
    // A bad script is reported, with a non-zero exit.
    let bad = out_dir().join("bad.tc");
    std::fs::write(&bad, "tc qdisc add dev x root handle 1: sfq\n").unwrap();
    let out = Command::new(&exe).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported qdisc"), "{err}");
}

#[test]
fn c_example_route_runs() {
    let exe = build_static(
        "route_example",
        &[workspace().join("examples/c/route.c")],
        &[],
    );
    let out = run(Command::new(&exe)
        .args([
            "examples/c/routes.txt",
            "10.1.2.3",
            "10.66.0.1",
            "8.8.8.8",
            "2001:db8:1::5",
            "2001:db9::1",
        ])
        .current_dir(workspace()));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "10.1.2.3 10.1.0.0/16 lab metric 10",
        "10.66.0.1 10.66.0.0/16 blackhole",
        "8.8.8.8 0.0.0.0/0 192.0.2.1@eth0 metric 100",
        "2001:db8:1::5 2001:db8:1::/48 lab6",
        "2001:db9::1 ::/0 fe80::1@eth0 metric 1024",
    ] {
        assert!(text.contains(line), "no line \"{line}\" in:\n{text}");
    }
    // A bad address and a missing file are reported, with a non-zero exit.
    let out = Command::new(&exe)
        .args(["examples/c/routes.txt", "10.1.2"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("10.1.2"));
    let out = Command::new(&exe).arg("no/such/file").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/file"), "{err}");
}

#[test]
fn c_example_reasm_runs() {
    let exe = build_static(
        "reasm_example",
        &[workspace().join("examples/c/reasm.c")],
        &[],
    );
    let out = run(&mut Command::new(&exe));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "4000-byte datagram, MTU 1500: 3 fragments, 4040 bytes: 1500 1500 1040",
        "reassembled in reverse order: 4000 bytes, identical",
        "send ICMP time exceeded, quoting 450005dc",
        "ReasmReqds 4 ReasmOKs 1 ReasmFails 1 ReasmTimeout 1",
    ] {
        assert!(text.contains(line), "no line \"{line}\" in:\n{text}");
    }
    let out = run(Command::new(&exe).args(["1400"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fits the MTU"), "{text}");
    // DF is clear, but an MTU below 68 leaves no room: reported, non-zero exit.
    let out = Command::new(&exe).args(["4000", "20"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MTU"), "{err}");
}

#[test]
fn c_bench_smoke() {
    let exe = build_static(
        "shaper_bench",
        &[workspace().join("htb-ffi/bench/shaper_bench.c")],
        &["-O2"],
    );
    let out = run(Command::new(&exe).arg("20000"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ns/packet"), "{text}");
}

/// `make install PREFIX=...` then the documented pkg-config line.
#[test]
fn make_install_and_pkg_config() {
    if !on_path("make") || !on_path("pkg-config") {
        eprintln!("skipped: make or pkg-config not on PATH");
        return;
    }
    let prefix = out_dir().join("prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    run(Command::new("make")
        .arg("-C")
        .arg(workspace().join("htb-ffi"))
        .arg("install")
        .arg("NO_BUILD=1")
        .arg(format!("LIB_DIR={}", lib_dir().display()))
        .arg(format!("PREFIX={}", prefix.display())));
    for f in [
        "include/htb.h",
        "lib/libhtb.a",
        "lib/libhtb.so",
        "lib/pkgconfig/htb.pc",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    let exe = out_dir().join("pkgconfig_app");
    let script = format!(
        "cc -std=c11 -Wall -Wextra -Werror -pedantic {src} $(pkg-config --cflags --libs htb) \
         -Wl,-rpath,{prefix}/lib -o {exe} && {exe} && \
         pkg-config --modversion htb",
        src = workspace()
            .join("htb-ffi/tests/c/pkgconfig_app.c")
            .display(),
        prefix = prefix.display(),
        exe = exe.display(),
    );
    let out = run(Command::new("sh")
        .args(["-c", &script])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}
