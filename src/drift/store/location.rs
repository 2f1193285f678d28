//! `--drift-db`: where drift records live, and how to name that place in logs without its password.

use std::fmt;
use std::path::{Path, PathBuf};

use super::super::DATABASE_FILE;

/// The record database: a SQLite file (one instance) or a PostgreSQL URL (shared by every instance).
#[derive(Clone, PartialEq, Eq)]
pub enum DriftDb {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DriftDb {
    /// Empty: `<storage_root>/drift.db`. `postgres://` or `postgresql://`: that PostgreSQL database. Another
    /// `scheme://` is refused. Anything else: a SQLite file at that path.
    pub fn parse(value: &str, storage_root: &Path) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(DriftDb::Sqlite(storage_root.join(DATABASE_FILE)));
        }
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(DriftDb::Postgres(value.to_string()));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(format!(
                "--drift-db: unsupported scheme {scheme:?}: want postgres://... or postgresql://... (PostgreSQL), or a file path (SQLite)"
            ));
        }
        Ok(DriftDb::Sqlite(PathBuf::from(value)))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DriftDb::Sqlite(_) => "sqlite",
            DriftDb::Postgres(_) => "postgres",
        }
    }

    /// For logs: the path, or the URL with any password (in the user info or a `password=` parameter)
    /// replaced by `REDACTED`.
    pub fn redacted(&self) -> String {
        match self {
            DriftDb::Sqlite(path) => path.display().to_string(),
            DriftDb::Postgres(url) => redact_url(url),
        }
    }
}

impl fmt::Debug for DriftDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DriftDb({})", self.redacted())
    }
}

impl fmt::Display for DriftDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:pass@hosts/db?k=v&password=p` with both passwords redacted; works on multi-host URLs
/// (which URL parsers refuse) by cutting at the last `@` of the authority.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // A path has no password; anything else that mentions one is withheld whole.
        return if url.to_ascii_lowercase().contains("password") {
            "REDACTED".to_string()
        } else {
            url.to_string()
        };
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:REDACTED@{hosts}"),
            None => format!("{userinfo}@{hosts}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=REDACTED"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_picks_the_backend() {
        let root = Path::new("/data");
        assert_eq!(
            DriftDb::parse("", root).unwrap(),
            DriftDb::Sqlite(PathBuf::from("/data/drift.db"))
        );
        assert_eq!(
            DriftDb::parse("/var/drift.db", root).unwrap(),
            DriftDb::Sqlite(PathBuf::from("/var/drift.db"))
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db",
            "POSTGRES://h/db",
        ] {
            assert_eq!(DriftDb::parse(url, root).unwrap().backend(), "postgres");
        }
        let err = DriftDb::parse("mysql://u:p@h/db", root).unwrap_err();
        assert!(err.contains("unsupported scheme \"mysql\""), "{err}");
        assert!(!err.contains(":p@"), "{err}");
    }

    #[test]
    fn passwords_never_reach_a_log_line() {
        for (url, want) in [
            (
                "postgres://drift:s3cr%40t@db.example:5432/drift?sslmode=require",
                "postgres://drift:REDACTED@db.example:5432/drift?sslmode=require",
            ),
            (
                "postgresql://drift@h1:5432,h2:5432/drift?password=s3cret&target_session_attrs=read-write",
                "postgresql://drift@h1:5432,h2:5432/drift?password=REDACTED&target_session_attrs=read-write",
            ),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u:p@h", "postgres://u:REDACTED@h"),
        ] {
            let db = DriftDb::parse(url, Path::new("/")).unwrap();
            assert_eq!(db.redacted(), want);
            assert_eq!(format!("{db:?}"), format!("DriftDb({want})"));
        }
    }
}
