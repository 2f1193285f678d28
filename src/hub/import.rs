//! `hub import`: loads YAML files into a Space, one Unit per file, through the ConfigHub client, so
//! it works against the local hub and a real ConfigHub alike.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::confighub::{self, Client, SpaceCreate, UnitCreate, data_hash};

pub const TOOLCHAIN: &str = "Kubernetes/YAML";

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportAction {
    Created,
    Updated,
    Unchanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    pub file: PathBuf,
    pub slug: String,
    pub unit_id: String,
    pub action: ImportAction,
    pub head_revision_num: i64,
}

impl fmt::Display for ImportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.action {
            ImportAction::Created => "created",
            ImportAction::Updated => "updated",
            ImportAction::Unchanged => "unchanged",
        };
        write!(
            f,
            "{verb} unit {} (revision {}) from {}",
            self.slug,
            self.head_revision_num,
            self.file.display()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a .yaml/.yml file")]
    NotYaml(PathBuf),
    #[error("{0}: no valid unit slug can be made from this file name")]
    BadName(PathBuf),
    #[error("{first} and {second} would both become unit {slug:?}")]
    DuplicateSlug {
        slug: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no .yaml/.yml files found")]
    NoFiles,
    #[error(transparent)]
    ConfigHub(#[from] confighub::Error),
}

/// Makes a valid slug from a file stem: invalid characters become `-`, the ends are trimmed to
/// alphanumerics and the length is capped at 128. `None` if nothing usable is left.
pub fn slug_from_stem(stem: &str) -> Option<String> {
    let mapped: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let capped: String = trimmed
        .chars()
        .take(super::validate::MAX_SLUG_LEN)
        .collect();
    let slug = capped.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    (!slug.is_empty()).then(|| slug.to_string())
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Expands folders (not recursively) to their YAML files and pairs every file with its slug.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).map_err(io(path))? {
                let file = entry.map_err(io(path))?.path();
                if file.is_file() && is_yaml(&file) {
                    files.push(file);
                }
            }
        } else if is_yaml(path) {
            files.push(path.clone());
        } else {
            return Err(ImportError::NotYaml(path.clone()));
        }
    }
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for file in files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let slug = slug_from_stem(stem).ok_or_else(|| ImportError::BadName(file.clone()))?;
        if let Some((_, first)) = out.iter().find(|(s, _)| *s == slug) {
            return Err(ImportError::DuplicateSlug {
                slug,
                first: first.clone(),
                second: file,
            });
        }
        out.push((slug, file));
    }
    if out.is_empty() {
        return Err(ImportError::NoFiles);
    }
    out.sort();
    Ok(out)
}

/// Imports `paths` into Space `space_slug` (created if missing): creates missing Units, uploads
/// changed data (guarded by `If-Match`), and leaves unchanged Units alone so no revision is made.
pub async fn import_paths(
    client: &Client,
    space_slug: &str,
    paths: &[PathBuf],
) -> Result<Vec<ImportOutcome>, ImportError> {
    let files = collect_files(paths)?;
    let space = match client.find_space_by_slug(space_slug).await? {
        Some(space) => space,
        None => {
            let req = SpaceCreate {
                slug: space_slug.to_string(),
                ..Default::default()
            };
            client.create_space(&req, true).await?
        }
    };
    let existing = client.list_units(&space.space_id, None, &[]).await?;
    let mut outcomes = Vec::new();
    for (slug, file) in files {
        let data = std::fs::read(&file).map_err(|source| ImportError::Io {
            path: file.clone(),
            source,
        })?;
        let (unit, created) = match existing.iter().find(|u| u.slug == slug) {
            Some(unit) => (unit.clone(), false),
            None => {
                let req = UnitCreate {
                    slug: slug.clone(),
                    toolchain_type: TOOLCHAIN.into(),
                    ..Default::default()
                };
                (
                    client.create_unit(&space.space_id, &req, false).await?,
                    true,
                )
            }
        };
        let (unit, action) = if data_hash(&data) == unit.data_hash {
            let action = if created {
                ImportAction::Created
            } else {
                ImportAction::Unchanged
            };
            (unit, action)
        } else {
            let description = format!(
                "hub import of {}",
                file.file_name().and_then(|n| n.to_str()).unwrap_or(&slug)
            );
            let updated = client
                .upload_unit_data(
                    &space.space_id,
                    &unit.unit_id,
                    data,
                    Some(&unit.data_hash),
                    Some(&description),
                )
                .await?;
            let action = if created {
                ImportAction::Created
            } else {
                ImportAction::Updated
            };
            (updated, action)
        };
        outcomes.push(ImportOutcome {
            file,
            slug,
            unit_id: unit.unit_id,
            action,
            head_revision_num: unit.head_revision_num,
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_valid_slugs() {
        assert_eq!(slug_from_stem("web").as_deref(), Some("web"));
        assert_eq!(slug_from_stem("my app (v2)").as_deref(), Some("my-app--v2"));
        assert_eq!(slug_from_stem("_hidden.").as_deref(), Some("hidden"));
        assert_eq!(slug_from_stem("é"), None);
        assert_eq!(slug_from_stem(&"x".repeat(300)).map(|s| s.len()), Some(128));
        for stem in ["a b", "--x--", "ünïcode-name", "a'b"] {
            let slug = slug_from_stem(stem).unwrap();
            assert!(crate::hub::validate::is_valid_slug(&slug), "{slug}");
        }
    }

    #[test]
    fn collect_files_picks_yaml_and_refuses_collisions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b: 1").unwrap();
        std::fs::write(dir.path().join("a.yml"), "a: 1").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let files = collect_files(&[dir.path().to_path_buf()]).unwrap();
        let slugs: Vec<_> = files.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(slugs, ["a", "b"]);

        std::fs::write(dir.path().join("a.yaml"), "a: 2").unwrap();
        assert!(matches!(
            collect_files(&[dir.path().to_path_buf()]),
            Err(ImportError::DuplicateSlug { .. })
        ));
        assert!(matches!(
            collect_files(&[dir.path().join("notes.txt")]),
            Err(ImportError::NotYaml(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            collect_files(&[empty.path().to_path_buf()]),
            Err(ImportError::NoFiles)
        ));
    }
}
