//! Links OpenBLAS statically for the CPU matrix products when its static library is present
//! (Debian/Ubuntu: `apt-get install libopenblas-pthread-dev`), and sets `cfg(lstmgen_blas)`.
//! Without it the engine uses its own blocked kernels (`src/gemm/blocked.rs`): same results up to
//! f32 rounding. `LSTMGEN_OPENBLAS=/path/to/libopenblas.a` picks a library; `LSTMGEN_OPENBLAS=off`
//! disables the search. The library is linked statically, so the built `.node` needs nothing at
//! run time.
//!
//! With the `cuda` feature it also compiles the kernels in `src/cuda/*.cu` to PTX with nvcc (`NVCC`, else
//! `$CUDA_HOME/bin/nvcc`, else `nvcc` on PATH) for compute capability 7.5, the oldest CUDA 13
//! supports; the driver compiles the PTX for the GPU it runs on. The persistent recurrence
//! (`recurrence.cu`) becomes a fatbin with machine code for `CUDA_COMPUTE_CAP` (default 90, the
//! H200) beside that PTX; its `ptxas -v` report (registers, shared memory, spills) is written to
//! `OUT_DIR/recurrence.ptxas.txt`, and the build fails if a kernel spills registers to local memory.
use std::path::PathBuf;
use std::process::Command;

const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.a",
    "/usr/lib/x86_64-linux-gnu/libopenblas.a",
    "/usr/lib/libopenblas.a",
];

fn main() {
    link_openblas();
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_cuda_kernels();
    }
}

fn compile_cuda_kernels() {
    println!("cargo::rerun-if-env-changed=NVCC");
    let nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("bin/nvcc")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo::rerun-if-changed=src/cuda/reduce.cuh");
    for name in ["lstm_cell", "adam", "sample", "loss"] {
        let src = format!("src/cuda/{name}.cu");
        println!("cargo::rerun-if-changed={src}");
        let status = Command::new(&nvcc)
            .args([
                "--ptx",
                "-arch=compute_75",
                "-O3",
                "-I",
                "src/cuda",
                &src,
                "-o",
            ])
            .arg(out_dir.join(format!("{name}.ptx")))
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {} (set NVCC or CUDA_HOME): {e}", nvcc.display())
            });
        assert!(status.success(), "{} failed on {src}", nvcc.display());
    }
    compile_recurrence(&nvcc, &out_dir);
}

/// `src/cuda/recurrence.cu` as a fatbin (sm_CAP machine code + compute_75 PTX), with its ptxas report.
fn compile_recurrence(nvcc: &std::path::Path, out_dir: &std::path::Path) {
    println!("cargo::rerun-if-changed=src/cuda/recurrence.cu");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = Command::new(nvcc)
        .args(["-fatbin", "-O3", "-Xptxas", "-v"])
        .arg(format!("-gencode=arch=compute_{cap},code=sm_{cap}"))
        .arg("-gencode=arch=compute_75,code=compute_75")
        .args(["src/cuda/recurrence.cu", "-o"])
        .arg(out_dir.join("recurrence.fatbin"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nvcc.display()));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed on src/cuda/recurrence.cu:\n{report}",
        nvcc.display()
    );
    std::fs::write(out_dir.join("recurrence.ptxas.txt"), report.as_bytes())
        .expect("OUT_DIR is writable");
    let spills = report.lines().filter(|l| {
        l.contains("spill") && !l.contains("0 bytes spill stores, 0 bytes spill loads")
    });
    let spills: Vec<&str> = spills.collect();
    assert!(
        spills.is_empty(),
        "the persistent recurrence spills registers on sm_{cap}:\n{report}"
    );
}

fn link_openblas() {
    println!("cargo::rustc-check-cfg=cfg(lstmgen_blas)");
    println!("cargo::rerun-if-env-changed=LSTMGEN_OPENBLAS");
    let chosen = match std::env::var("LSTMGEN_OPENBLAS") {
        Ok(v) if v == "off" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()),
    };
    let Some(lib) = chosen else {
        println!("cargo::warning=OpenBLAS static library not found: CPU f32 products use lstmgen's own blocked kernels. Install libopenblas-pthread-dev or set LSTMGEN_OPENBLAS to link it.");
        watch_for_install();
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

/// Re-runs this script when OpenBLAS is installed after a build: cargo re-checks the nearest existing
/// folder above each candidate path (it scans a folder for changed files), so installing the package
/// changes it and the next build links the library without touching this file. Folders as wide as
/// `/usr/lib` are not watched (scanning them costs seconds per build).
fn watch_for_install() {
    let mut watched: Vec<PathBuf> = Vec::new();
    for c in CANDIDATES {
        let found = std::path::Path::new(c)
            .ancestors()
            .skip(1)
            .take_while(|d| d.components().count() >= 4)
            .find(|d| d.is_dir());
        if let Some(dir) = found.map(PathBuf::from) {
            if !watched.contains(&dir) {
                println!("cargo::rerun-if-changed={}", dir.display());
                watched.push(dir);
            }
        }
    }
}
