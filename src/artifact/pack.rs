//! `confighub-source-controller pack`: the same build as the controller, from local files, for previews,
//! CI checks and benchmarks. Each `*.yaml`/`*.yml` file is one unit whose slug is the file stem.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use super::build::{BuiltArtifact, build};
use super::unit::{BuildContext, KUBERNETES_YAML, UnitInput};
use crate::atomic_file::AtomicWrite;

/// Inputs of one pack run, independent of the CLI parser.
#[derive(Clone, Debug)]
pub struct PackRequest {
    /// Files and folders (folders are read non-recursively).
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub space_name: String,
    pub space_id: String,
    pub mode_prefix: &'static str,
    /// Stamped as `confighub.com/RevisionNum` on every object (local files have no revision).
    pub revision_num: i64,
}

/// Collects the unit files: folders contribute their `*.yaml`/`*.yml` files, named files are taken as is
/// (and must have one of those extensions). Sorted by path so the order never depends on the directory.
pub fn collect_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for input in inputs {
        let md = fs::metadata(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
        if md.is_dir() {
            let entries =
                fs::read_dir(input).map_err(|e| format!("listing {}: {e}", input.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("listing {}: {e}", input.display()))?;
                let path = entry.path();
                if is_yaml(&path) && entry.file_type().is_ok_and(|t| !t.is_dir()) {
                    files.push(path);
                }
            }
        } else if is_yaml(input) {
            files.push(input.clone());
        } else {
            return Err(format!(
                "{}: not a .yaml/.yml file or a folder",
                input.display()
            ));
        }
    }
    // By bytes: comparing `Path`s component-wise costs more than the sort is worth here.
    files.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    files.dedup();
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(OsStr::to_str),
        Some("yaml" | "yml")
    )
}

/// Reads the files, builds, writes the archive atomically, and returns the artifact.
pub fn pack(req: &PackRequest) -> Result<BuiltArtifact, String> {
    let files = collect_files(&req.inputs)?;
    if files.is_empty() {
        return Err("no .yaml/.yml files found in the inputs".into());
    }
    // Reading 10,000 small files is syscall-bound: spread it over the cores too.
    let units = super::par::map(
        &files,
        |_| 1,
        256,
        |_, path| {
            let slug = path
                .file_stem()
                .and_then(OsStr::to_str)
                .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?;
            let data = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            Ok(UnitInput {
                slug: slug.to_string(),
                toolchain_type: KUBERNETES_YAML.to_string(),
                revision_num: req.revision_num,
                data,
            })
        },
    )
    .into_iter()
    .collect::<Result<Vec<_>, String>>()?;
    let ctx = BuildContext {
        space_name: req.space_name.clone(),
        space_id: req.space_id.clone(),
        mode_prefix: req.mode_prefix,
    };
    let artifact = build(&units, &ctx).map_err(|e| e.to_string())?;
    write_atomically(&req.out, &artifact.bytes)?;
    Ok(artifact)
}

/// Temp file + rename, so a reader never sees half an archive. Not durable: like `tar` or `cp`, a preview
/// written by hand need not survive a power cut (the controller's storage does fsync).
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), String> {
    AtomicWrite {
        temp_prefix: ".pack-",
        durable: false,
        private: false,
    }
    .write(out, bytes)
    .map_err(|e| format!("writing {}: {e}", out.display()))
}
