//! The engines a bench runs on: tract always; ONNX Runtime too when a library is given
//! (`FRAMEWIRE_ONNXRUNTIME_LIB` or `ORT_DYLIB_PATH`, as `framewire serve` finds it). tract's
//! benches keep their historical names; ONNX Runtime's carry the suffix `_onnxruntime`.

use framewire::vision::runtime::{EngineKind, Runtime};

/// `(suffix, engine kind)` for every engine this machine can run.
pub fn engines() -> Vec<(&'static str, EngineKind)> {
    let mut v = vec![("", EngineKind::Tract)];
    if std::env::var_os("FRAMEWIRE_ONNXRUNTIME_LIB").is_some() || std::env::var_os("ORT_DYLIB_PATH").is_some() {
        v.push(("_onnxruntime", EngineKind::OnnxRuntime));
    }
    v
}

/// The runtime of `kind` for `threads` cores (not every bench loads models itself).
#[allow(dead_code)]
pub fn runtime(kind: EngineKind, threads: usize) -> Runtime {
    match kind {
        EngineKind::Tract => Runtime::tract(threads),
        EngineKind::OnnxRuntime => {
            let lib = std::env::var_os("FRAMEWIRE_ONNXRUNTIME_LIB").map(std::path::PathBuf::from);
            Runtime::onnxruntime(lib.as_deref(), threads).expect("ONNX Runtime library")
        }
    }
}

/// A criterion group.
pub type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Run `per_engine(group, suffix, kind)` for every engine, in one group named `name`.
pub fn each_engine(
    c: &mut criterion::Criterion,
    name: &str,
    samples: usize,
    mut per_engine: impl FnMut(&mut Group<'_>, &str, EngineKind),
) {
    let mut g = c.benchmark_group(name);
    g.sample_size(samples);
    for (suffix, kind) in engines() {
        per_engine(&mut g, suffix, kind);
    }
    g.finish();
}
