//! The project's own small Go programs under hack/ (Flux's event type, kustomize's reader), built with
//! `go build` on first use and cached outside the source tree by the hash of their sources.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The binary of `hack/<name>`, built if its sources changed since the last build.
pub fn built_go_tool(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hack")
        .join(name);
    let mut hash = Sha256::new();
    for file in ["main.go", "go.mod", "go.sum"] {
        hash.update(std::fs::read(source.join(file)).expect("reading the tool's sources"));
    }
    let cache = std::env::var_os("TESTBIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/confighub-source-controller")
        })
        .join("tools");
    let bin = cache.join(format!("{name}-{}", &hex::encode(hash.finalize())[..16]));
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let partial = bin.with_extension(format!("partial-{}", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&partial)
        .arg(".")
        .current_dir(&source)
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .unwrap_or_else(|e| panic!("running go build for hack/{name}: {e}"));
    assert!(status.success(), "building hack/{name} failed");
    std::fs::rename(&partial, &bin).unwrap();
    bin
}
