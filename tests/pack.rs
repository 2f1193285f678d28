//! The `pack` subcommand end to end: real binary, real files.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_confighub-source-controller");

fn write_units(dir: &Path) {
    std::fs::write(
        dir.join("web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: apps}\nspec: {replicas: 1}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cache.yml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: cache, namespace: apps}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cache, namespace: apps}\n",
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "not a unit").unwrap();
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
}

fn pack(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("pack").args(args).output().unwrap()
}

#[test]
fn pack_prints_the_digest_of_the_file_and_is_reproducible() {
    let units = tempfile::tempdir().unwrap();
    write_units(units.path());
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("a.tar.gz");
    let second = out.path().join("b.tar.gz");
    let src = units.path().to_str().unwrap();

    let run = pack(&[src, "--out", first.to_str().unwrap(), "--space", "prod"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    let bytes = std::fs::read(&first).unwrap();
    let hex = hex::encode(Sha256::digest(&bytes));
    assert_eq!(field(&stdout, "digest"), format!("sha256:{hex}"));
    assert_eq!(field(&stdout, "revision"), format!("head@sha256:{hex}"));
    assert_eq!(field(&stdout, "units"), "2");
    assert_eq!(field(&stdout, "objects"), "3");

    let run = pack(&[src, "--out", second.to_str().unwrap(), "--space", "prod"]);
    assert!(run.status.success());
    assert_eq!(std::fs::read(&second).unwrap(), bytes);

    // Naming the files instead of the folder, in another order, gives the same archive.
    let third = out.path().join("c.tar.gz");
    let web = units.path().join("web.yaml");
    let cache = units.path().join("cache.yml");
    let run = pack(&[
        web.to_str().unwrap(),
        cache.to_str().unwrap(),
        "--out",
        third.to_str().unwrap(),
        "--space",
        "prod",
        "--mode",
        "released",
    ]);
    assert!(run.status.success());
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(field(&stdout, "revision"), format!("released@sha256:{hex}"));
    assert_eq!(std::fs::read(&third).unwrap(), bytes);
}

#[test]
fn pack_fails_clearly_on_bad_input() {
    let units = tempfile::tempdir().unwrap();
    std::fs::write(units.path().join("broken.yaml"), "kind: [\n").unwrap();
    let out = units.path().join("out.tar.gz");
    let run = pack(&[
        units.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("broken"), "{stderr}");
    assert!(!out.exists());

    let run = pack(&["/definitely/not/here", "--out", out.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(
        String::from_utf8(run.stderr)
            .unwrap()
            .contains("/definitely/not/here")
    );
}

#[path = "e2e/support/go_tool.rs"]
mod go_tool;

/// The archive passes Flux's own extractor (github.com/fluxcd/pkg/tar, what kustomize-controller uses;
/// `hack/flux-archive -untar`), and what it extracts is exactly what the archive holds.
#[test]
fn flux_extracts_the_archive_with_its_own_code() {
    let units = tempfile::tempdir().unwrap();
    write_units(units.path());
    for demo in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/units"))
        .unwrap()
    {
        let demo = demo.unwrap().path();
        std::fs::copy(&demo, units.path().join(demo.file_name().unwrap())).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("a.tar.gz");
    let packed = pack(&[
        units.path().to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
    ]);
    assert!(packed.status.success(), "{packed:?}");

    let extracted = out.path().join("extracted");
    let flux = Command::new(go_tool::built_go_tool("flux-archive"))
        .arg("-untar")
        .arg(&archive)
        .arg(&extracted)
        .output()
        .unwrap();
    assert!(
        flux.status.success(),
        "Flux's extractor refused the archive: {}",
        String::from_utf8_lossy(&flux.stderr)
    );

    let bytes = std::fs::read(&archive).unwrap();
    let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    for entry in entries.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        assert_eq!(
            std::fs::read(extracted.join(&name)).unwrap(),
            content,
            "{name} as Flux extracted it"
        );
        names.push(name);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&extracted)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    on_disk.sort();
    names.sort();
    assert_eq!(
        on_disk, names,
        "Flux extracted every entry and nothing else"
    );
    assert_eq!(names.len(), 3, "cache, settings and web: {names:?}");
}
