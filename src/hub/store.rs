//! SQLite persistence for the hub. Entities are stored as their API JSON next to the few columns
//! needed for lookups and uniqueness; filtering happens in Rust (see `where_parser`).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::confighub::{ChangeSet, Release, Revision, Space, Target, Unit};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    id TEXT PRIMARY KEY, space_id TEXT NOT NULL, slug TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE (space_id, slug));
CREATE TABLE IF NOT EXISTS revisions (
    id TEXT PRIMARY KEY, unit_id TEXT NOT NULL, num INTEGER NOT NULL, body TEXT NOT NULL,
    data BLOB NOT NULL, UNIQUE (unit_id, num));
CREATE TABLE IF NOT EXISTS change_sets (
    id TEXT PRIMARY KEY, space_id TEXT NOT NULL, slug TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE (space_id, slug));
CREATE TABLE IF NOT EXISTS targets (
    id TEXT PRIMARY KEY, space_id TEXT NOT NULL, slug TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE (space_id, slug));
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY, space_id TEXT NOT NULL, num INTEGER NOT NULL, body TEXT NOT NULL);
";

/// Opens (creating if needed) the hub database in WAL mode.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Reads a `meta` value, creating it with `init` on first use (organization and user IDs).
pub fn meta_or_init(
    conn: &Connection,
    key: &str,
    init: impl FnOnce() -> String,
) -> rusqlite::Result<String> {
    if let Some(v) = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?
    {
        return Ok(v);
    }
    let value = init();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(value)
}

fn decode<T: DeserializeOwned>(body: String) -> Result<T, ApiError> {
    Ok(serde_json::from_str(&body)?)
}

fn encode<T: Serialize>(value: &T) -> Result<String, ApiError> {
    Ok(serde_json::to_string(value)?)
}

fn one<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: &[&str],
) -> Result<Option<T>, ApiError> {
    let body: Option<String> = conn
        .query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))
        .optional()?;
    body.map(decode).transpose()
}

fn all<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: &[&str],
) -> Result<Vec<T>, ApiError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(row?)?);
    }
    Ok(out)
}

pub fn get_space(conn: &Connection, id: &str) -> Result<Option<Space>, ApiError> {
    one(conn, "SELECT body FROM spaces WHERE id = ?1", &[id])
}

pub fn space_by_slug(conn: &Connection, slug: &str) -> Result<Option<Space>, ApiError> {
    one(conn, "SELECT body FROM spaces WHERE slug = ?1", &[slug])
}

pub fn list_spaces(conn: &Connection) -> Result<Vec<Space>, ApiError> {
    all(conn, "SELECT body FROM spaces ORDER BY slug", &[])
}

pub fn put_space(conn: &Connection, s: &Space) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR REPLACE INTO spaces (id, slug, body) VALUES (?1, ?2, ?3)",
        params![s.space_id, s.slug, encode(s)?],
    )?;
    Ok(())
}

pub fn get_unit(conn: &Connection, space_id: &str, id: &str) -> Result<Option<Unit>, ApiError> {
    one(
        conn,
        "SELECT body FROM units WHERE id = ?1 AND space_id = ?2",
        &[id, space_id],
    )
}

pub fn unit_by_slug(
    conn: &Connection,
    space_id: &str,
    slug: &str,
) -> Result<Option<Unit>, ApiError> {
    one(
        conn,
        "SELECT body FROM units WHERE space_id = ?1 AND slug = ?2",
        &[space_id, slug],
    )
}

pub fn list_units(conn: &Connection, space_id: &str) -> Result<Vec<Unit>, ApiError> {
    all(
        conn,
        "SELECT body FROM units WHERE space_id = ?1 ORDER BY slug",
        &[space_id],
    )
}

/// Every Unit of the organization, in ID order (the bulk reads).
pub fn list_all_units(conn: &Connection) -> Result<Vec<Unit>, ApiError> {
    all(conn, "SELECT body FROM units ORDER BY id", &[])
}

pub fn put_unit(conn: &Connection, u: &Unit) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR REPLACE INTO units (id, space_id, slug, body) VALUES (?1, ?2, ?3, ?4)",
        params![u.unit_id, u.space_id, u.slug, encode(u)?],
    )?;
    Ok(())
}

pub fn delete_unit(conn: &Connection, id: &str) -> Result<(), ApiError> {
    conn.execute("DELETE FROM revisions WHERE unit_id = ?1", [id])?;
    conn.execute("DELETE FROM units WHERE id = ?1", [id])?;
    Ok(())
}

pub fn get_revision(
    conn: &Connection,
    unit_id: &str,
    id: &str,
) -> Result<Option<Revision>, ApiError> {
    one(
        conn,
        "SELECT body FROM revisions WHERE id = ?1 AND unit_id = ?2",
        &[id, unit_id],
    )
}

pub fn list_revisions(conn: &Connection, unit_id: &str) -> Result<Vec<Revision>, ApiError> {
    all(
        conn,
        "SELECT body FROM revisions WHERE unit_id = ?1 ORDER BY num",
        &[unit_id],
    )
}

/// Every Revision of the organization, in ID order (the bulk reads).
pub fn list_all_revisions(conn: &Connection) -> Result<Vec<Revision>, ApiError> {
    all(conn, "SELECT body FROM revisions ORDER BY id", &[])
}

/// Revision `num` of unit `unit_id`.
pub fn revision_by_num(
    conn: &Connection,
    unit_id: &str,
    num: i64,
) -> Result<Option<Revision>, ApiError> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM revisions WHERE unit_id = ?1 AND num = ?2",
            params![unit_id, num],
            |r| r.get(0),
        )
        .optional()?;
    body.map(decode).transpose()
}

pub fn revision_data(conn: &Connection, id: &str) -> Result<Option<Vec<u8>>, ApiError> {
    Ok(conn
        .query_row("SELECT data FROM revisions WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn insert_revision(conn: &Connection, r: &Revision, data: &[u8]) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO revisions (id, unit_id, num, body, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.revision_id, r.unit_id, r.revision_num, encode(r)?, data],
    )?;
    Ok(())
}

/// Rewrites a revision's JSON (only its `Releases` bookkeeping changes after creation).
pub fn update_revision_body(conn: &Connection, r: &Revision) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE revisions SET body = ?2 WHERE id = ?1",
        params![r.revision_id, encode(r)?],
    )?;
    Ok(())
}

pub fn get_change_set(
    conn: &Connection,
    space_id: &str,
    id: &str,
) -> Result<Option<ChangeSet>, ApiError> {
    one(
        conn,
        "SELECT body FROM change_sets WHERE id = ?1 AND space_id = ?2",
        &[id, space_id],
    )
}

pub fn change_set_by_slug(
    conn: &Connection,
    space_id: &str,
    slug: &str,
) -> Result<Option<ChangeSet>, ApiError> {
    one(
        conn,
        "SELECT body FROM change_sets WHERE space_id = ?1 AND slug = ?2",
        &[space_id, slug],
    )
}

pub fn list_change_sets(conn: &Connection, space_id: &str) -> Result<Vec<ChangeSet>, ApiError> {
    all(
        conn,
        "SELECT body FROM change_sets WHERE space_id = ?1 ORDER BY slug",
        &[space_id],
    )
}

pub fn put_change_set(conn: &Connection, c: &ChangeSet) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR REPLACE INTO change_sets (id, space_id, slug, body) VALUES (?1, ?2, ?3, ?4)",
        params![c.change_set_id, c.space_id, c.slug, encode(c)?],
    )?;
    Ok(())
}

pub fn get_target(conn: &Connection, id: &str) -> Result<Option<Target>, ApiError> {
    one(conn, "SELECT body FROM targets WHERE id = ?1", &[id])
}

pub fn target_by_slug(
    conn: &Connection,
    space_id: &str,
    slug: &str,
) -> Result<Option<Target>, ApiError> {
    one(
        conn,
        "SELECT body FROM targets WHERE space_id = ?1 AND slug = ?2",
        &[space_id, slug],
    )
}

pub fn list_targets(conn: &Connection, space_id: &str) -> Result<Vec<Target>, ApiError> {
    all(
        conn,
        "SELECT body FROM targets WHERE space_id = ?1 ORDER BY slug",
        &[space_id],
    )
}

pub fn put_target(conn: &Connection, t: &Target) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR REPLACE INTO targets (id, space_id, slug, body) VALUES (?1, ?2, ?3, ?4)",
        params![t.target_id, t.space_id, t.slug, encode(t)?],
    )?;
    Ok(())
}

/// A Unit's `TargetID` must name a Target of the organization (or be empty).
pub fn ensure_target(conn: &Connection, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || get_target(conn, id)?.is_some() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "TargetID {id} names no Target"
    )))
}

/// The Space's latest Release (highest `ReleaseNum`), if any.
pub fn latest_release(conn: &Connection, space_id: &str) -> Result<Option<Release>, ApiError> {
    one(
        conn,
        "SELECT body FROM releases WHERE space_id = ?1 ORDER BY num DESC LIMIT 1",
        &[space_id],
    )
}

pub fn next_release_num(conn: &Connection, space_id: &str) -> Result<i64, ApiError> {
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(num) FROM releases WHERE space_id = ?1",
        [space_id],
        |r| r.get(0),
    )?;
    Ok(max.unwrap_or(0) + 1)
}

pub fn insert_release(conn: &Connection, r: &Release) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO releases (id, space_id, num, body) VALUES (?1, ?2, ?3, ?4)",
        params![r.release_id, r.space_id, r.release_num, encode(r)?],
    )?;
    Ok(())
}

/// The Space at `id`, or the documented 404.
pub fn space_or_404(conn: &Connection, id: &str) -> Result<Space, ApiError> {
    get_space(conn, id)?.ok_or_else(|| ApiError::not_found(format!("Space {id} not found")))
}

/// The Unit `id` in Space `space_id`, or 404 (also when the Unit lives in another Space).
pub fn unit_or_404(conn: &Connection, space_id: &str, id: &str) -> Result<Unit, ApiError> {
    space_or_404(conn, space_id)?;
    get_unit(conn, space_id, id)?.ok_or_else(|| ApiError::not_found(format!("Unit {id} not found")))
}
