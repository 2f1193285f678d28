//! Tests of [`super`] (storage.rs).

use super::*;
use crate::artifact::{BuildContext, UnitInput, build};

const KIND: &str = "confighubrepository";

fn built(n: i64) -> BuiltArtifact {
    let yaml =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{n: \"{n}\"}}\n");
    build(
        &[UnitInput::new("cm", "Kubernetes/YAML", n, yaml)],
        &BuildContext {
            space_name: "s".into(),
            space_id: "id".into(),
            mode_prefix: "head",
        },
    )
    .unwrap()
}

fn storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path().to_path_buf(), "src.flux-system.svc:9090".into());
    (dir, storage)
}

#[test]
fn store_writes_content_addressed_file_atomically() {
    let (dir, storage) = storage();
    let a = built(1);
    let stored = storage.store(KIND, "ns", "repo", &a).unwrap();
    let hex = a.digest_hex();
    assert_eq!(
        stored.path,
        format!("confighubrepository/ns/repo/{hex}.tar.gz")
    );
    assert_eq!(
        stored.url,
        format!("http://src.flux-system.svc:9090/confighubrepository/ns/repo/{hex}.tar.gz")
    );
    assert_eq!(stored.size, a.bytes.len() as u64);
    assert_eq!(fs::read(dir.path().join(&stored.path)).unwrap(), a.bytes);
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(dir.path().join("confighubrepository/ns/repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(storage.verify(&stored.path, &a.digest).unwrap());
    let status = stored.to_status(&a, "2026-01-01T00:00:00Z".into());
    assert_eq!(status.revision, a.revision);
    assert_eq!(status.size, Some(a.bytes.len() as i64));
}

#[test]
fn identical_digest_is_not_rewritten_but_corrupt_one_is() {
    let (dir, storage) = storage();
    let a = built(1);
    let stored = storage.store(KIND, "ns", "repo", &a).unwrap();
    let full = dir.path().join(&stored.path);
    let before = fs::metadata(&full).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    storage.store(KIND, "ns", "repo", &a).unwrap();
    assert_eq!(fs::metadata(&full).unwrap().modified().unwrap(), before);
    fs::write(&full, b"garbage").unwrap();
    storage.store(KIND, "ns", "repo", &a).unwrap();
    assert_eq!(fs::read(&full).unwrap(), a.bytes);
}

// A failed write keeping the last good artifact is tested on a real full disk (a tmpfs) end to end:
// tests/e2e/disk_full.rs.

#[test]
fn full_disk_error_names_operation_and_path() {
    // What a full volume gives a write: ENOSPC, reported with the step and the path.
    let err = crate::atomic_file::WriteError {
        op: "writing",
        path: PathBuf::from("/data/confighubrepository/ns/x/.tmp-1-2"),
        source: io::Error::from_raw_os_error(28),
    };
    let msg = StorageError::io(err.op, &err.path)(err.source).to_string();
    assert!(
        msg.starts_with("storage: writing \"/data/confighubrepository/ns/x/.tmp-1-2\""),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("space"), "{msg}");
}

#[test]
fn gc_keeps_current_and_bounded_recent() {
    let (dir, storage) = storage();
    let mut paths = Vec::new();
    for n in 0..6 {
        paths.push(storage.store(KIND, "ns", "repo", &built(n)).unwrap().path);
        std::thread::sleep(Duration::from_millis(15));
    }
    // Current is the OLDEST, to prove it is kept regardless of age.
    let current = paths[0].clone();
    let deleted = storage.gc(KIND, "ns", "repo", &current, 2).unwrap();
    assert_eq!(deleted.len(), 3);
    let left: Vec<String> = fs::read_dir(dir.path().join("confighubrepository/ns/repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 3);
    for keep in [&paths[0], &paths[4], &paths[5]] {
        assert!(dir.path().join(keep).exists(), "{keep} was deleted");
    }
    let deleted = storage.gc(KIND, "ns", "repo", &current, 0).unwrap();
    assert_eq!(deleted.len(), 2);
    assert!(dir.path().join(&current).exists());
    assert!(
        storage
            .gc(KIND, "ns", "missing", &current, 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn verify_all_detects_and_removes_corruption() {
    let (dir, storage) = storage();
    let good = storage.store(KIND, "ns", "a", &built(1)).unwrap();
    let bad = storage.store(KIND, "ns", "b", &built(2)).unwrap();
    let bad_full = dir.path().join(&bad.path);
    let mut bytes = fs::read(&bad_full).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&bad_full, bytes).unwrap();
    let results = storage.verify_all();
    assert_eq!(
        results,
        vec![(good.path.clone(), true), (bad.path.clone(), false)]
    );
    assert!(!bad_full.exists());
    assert!(!storage.verify(&bad.path, &bad.digest).unwrap());
    assert!(storage.verify(&good.path, &good.digest).unwrap());
    assert!(!storage.verify(&good.path, &bad.digest).unwrap());
}

#[test]
fn unsafe_names_and_paths_are_refused() {
    let (_dir, storage) = storage();
    let a = built(1);
    for (ns, name) in [
        ("..", "x"),
        ("ns", ".."),
        ("ns/../..", "x"),
        ("ns", "a/b"),
        ("", "x"),
        ("ns", "a\\b"),
        ("/etc", "x"),
        ("ns", ".hidden"),
        ("ns", "nul\0"),
    ] {
        let err = storage.store(KIND, ns, name, &a).unwrap_err();
        assert!(
            matches!(err, StorageError::UnsafeName { .. }),
            "{ns}/{name}: {err}"
        );
        assert!(storage.remove_object(KIND, ns, name).is_err());
        assert!(storage.gc(KIND, ns, name, "x", 1).is_err());
    }
    for path in ["../x.tar.gz", "/etc/passwd", "a/../../b", "", "a/./b"] {
        assert!(storage.verify(path, &a.digest).is_err(), "{path}");
    }
    assert!(matches!(
        storage.verify("a/b", "md5:abc"),
        Err(StorageError::BadDigest(_))
    ));
}

#[cfg(unix)]
#[test]
fn symlinked_directories_leaving_the_root_are_refused() {
    let (dir, storage) = storage();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(KIND)).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join(KIND).join("evil")).unwrap();
    let err = storage.store(KIND, "evil", "repo", &built(1)).unwrap_err();
    assert!(matches!(err, StorageError::OutsideRoot { .. }), "{err}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn remove_object_and_lookup() {
    let (dir, storage) = storage();
    let a = built(1);
    let stored = storage.store(KIND, "ns", "repo", &a).unwrap();
    assert_eq!(
        storage.artifact_for(KIND, "ns", "repo", &a.digest).unwrap(),
        Some(stored.clone())
    );
    storage.remove_object(KIND, "ns", "repo").unwrap();
    assert!(!dir.path().join(&stored.path).exists());
    assert_eq!(
        storage.artifact_for(KIND, "ns", "repo", &a.digest).unwrap(),
        None
    );
    storage.remove_object(KIND, "ns", "repo").unwrap();
}

#[test]
fn advertised_address_with_scheme_is_kept() {
    let s = Storage::new(PathBuf::from("/x"), "https://files.example/".into());
    assert_eq!(s.url_for("a/b.tar.gz"), "https://files.example/a/b.tar.gz");
}
