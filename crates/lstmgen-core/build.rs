//! Links OpenBLAS statically for the CPU matrix products when its static library is present
//! (Debian/Ubuntu: `apt-get install libopenblas-pthread-dev`), and sets `cfg(lstmgen_blas)`.
//! Without it the engine uses candle's own matmul (the `gemm` crate): same results, ~4x slower
//! products. `LSTMGEN_OPENBLAS=/path/to/libopenblas.a` picks a library; `LSTMGEN_OPENBLAS=off`
//! disables the search. The library is linked statically, so the built `.node` needs nothing at
//! run time.
use std::path::PathBuf;

const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.a",
    "/usr/lib/x86_64-linux-gnu/libopenblas.a",
    "/usr/lib/libopenblas.a",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lstmgen_blas)");
    println!("cargo::rerun-if-env-changed=LSTMGEN_OPENBLAS");
    let chosen = match std::env::var("LSTMGEN_OPENBLAS") {
        Ok(v) if v == "off" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()),
    };
    let Some(lib) = chosen else {
        println!("cargo::warning=OpenBLAS static library not found: CPU matrix products use candle's gemm (slower). Install libopenblas-pthread-dev or set LSTMGEN_OPENBLAS.");
        return;
    };
    if !lib.is_file() {
        panic!("LSTMGEN_OPENBLAS={} is not a file", lib.display());
    }
    println!("cargo::rerun-if-changed={}", lib.display());
    let dir = lib.parent().expect("library path has a directory");
    let name = lib
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("lib"))
        .expect("library file is named lib<name>.a");
    println!("cargo::rustc-link-search=native={}", dir.display());
    println!("cargo::rustc-link-lib=static={name}");
    println!("cargo::rustc-link-lib=dylib=pthread");
    println!("cargo::rustc-link-lib=dylib=m");
    println!("cargo::rustc-cfg=lstmgen_blas");
}
