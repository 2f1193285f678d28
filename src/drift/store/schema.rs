//! The record tables of both backends, and their versions. `schema_version` holds one row per component;
//! a database made before versioning (or just created by the base statements) is at version 1, and each
//! step moves it one version on, inside the transaction that opens the store.

use super::StoreError;

/// The `schema_version.component` of the record tables.
pub(super) const COMPONENT: &str = "drift_records";
/// The version this controller writes and reads.
pub(super) const VERSION: i64 = 2;

/// Version 1, as the first controllers made it, plus the version table.
pub(super) const SQLITE_BASE: &str = "
CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS drift_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    status TEXT NOT NULL,
    namespace TEXT NOT NULL,
    severity TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (id, episode));
CREATE UNIQUE INDEX IF NOT EXISTS drift_records_one_active ON drift_records (id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS drift_records_by_status ON drift_records (status, last_seen_ms);
";

/// Version 1 in PostgreSQL's types; the same columns and constraints (one active record per id).
pub(super) const POSTGRES_BASE: &str = "
CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS drift_records (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL,
    episode BIGINT NOT NULL,
    status TEXT NOT NULL,
    namespace TEXT NOT NULL,
    severity TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (id, episode));
CREATE UNIQUE INDEX IF NOT EXISTS drift_records_one_active ON drift_records (id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS drift_records_by_status ON drift_records (status, last_seen_ms);
";

/// `(version, statements)`: what moves a database from `version - 1` to `version`.
pub(super) const SQLITE_STEPS: &[(i64, &str)] = &[(
    2,
    // Fix-unit claims: the slug claimed for the episode, and who is writing it until when.
    "ALTER TABLE drift_records ADD COLUMN fix_unit_claim TEXT;
     ALTER TABLE drift_records ADD COLUMN fix_claim_holder TEXT;
     ALTER TABLE drift_records ADD COLUMN fix_claim_until_ms INTEGER;",
)];

pub(super) const POSTGRES_STEPS: &[(i64, &str)] = &[(
    2,
    "ALTER TABLE drift_records ADD COLUMN IF NOT EXISTS fix_unit_claim TEXT;
     ALTER TABLE drift_records ADD COLUMN IF NOT EXISTS fix_claim_holder TEXT;
     ALTER TABLE drift_records ADD COLUMN IF NOT EXISTS fix_claim_until_ms BIGINT;",
)];

/// The steps a database at `current` (`None`: no version row, so version 1) needs, in order. A database
/// newer than this controller is refused: its records may mean what this version cannot know.
pub(super) fn pending(
    current: Option<i64>,
    steps: &'static [(i64, &'static str)],
) -> Result<Vec<(i64, &'static str)>, StoreError> {
    let current = current.unwrap_or(1);
    if current > VERSION {
        return Err(StoreError::Schema(format!(
            "the database's drift schema is version {current}, newer than this controller's ({VERSION}); run a newer controller or another database"
        )));
    }
    Ok(steps
        .iter()
        .copied()
        .filter(|(v, _)| *v > current)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_moved_on_from_its_version_and_a_newer_one_refused() {
        assert_eq!(pending(None, SQLITE_STEPS).unwrap().len(), 1);
        assert_eq!(pending(Some(1), POSTGRES_STEPS).unwrap()[0].0, 2);
        assert!(pending(Some(VERSION), SQLITE_STEPS).unwrap().is_empty());
        let err = pending(Some(VERSION + 1), SQLITE_STEPS).unwrap_err();
        assert!(
            err.to_string().contains("newer than this controller"),
            "{err}"
        );
        for steps in [SQLITE_STEPS, POSTGRES_STEPS] {
            assert_eq!(steps.last().map(|s| s.0), Some(VERSION));
        }
    }
}
