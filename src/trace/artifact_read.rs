//! The revision of one unit inside the artifact a Kustomization is given: the archive is read from the
//! ExternalArtifact's URL (best effort: that URL is often only reachable inside the cluster) and the unit's
//! file (`<slug>.yaml`, see docs/artifacts.md) is searched for the `confighub.com/RevisionNum` stamp.

use std::io::Read;
use std::time::Duration;

use super::chain::ArtifactLookup;
use super::owner::REVISION_NUM_ANNOTATION;

/// Largest archive read; a bigger one is not inspected.
const MAX_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;

/// The unit's revision in the archive (pure): the first `confighub.com/RevisionNum` stamp in its file.
pub fn unit_revision(archive: &[u8], slug: &str) -> ArtifactLookup {
    let want = crate::artifact::file_name_for(slug);
    let gz = flate2::read::GzDecoder::new(archive).take(4 * MAX_ARCHIVE_BYTES);
    let mut tar = tar::Archive::new(gz);
    let entries = match tar.entries() {
        Ok(e) => e,
        Err(e) => return ArtifactLookup::Unreadable(format!("reading the archive: {e}")),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return ArtifactLookup::Unreadable(format!("reading the archive: {e}")),
        };
        let name = entry
            .path()
            .ok()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_string());
        if name.as_deref() != Some(want.as_str()) {
            continue;
        }
        let mut text = String::new();
        if let Err(e) = entry.read_to_string(&mut text) {
            return ArtifactLookup::Unreadable(format!("reading {want}: {e}"));
        }
        let key = format!("{REVISION_NUM_ANNOTATION}:");
        let revision = text.lines().find_map(|line| {
            let value = line.trim_start().strip_prefix(&key)?;
            value
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .parse::<i64>()
                .ok()
        });
        return match revision {
            Some(r) => ArtifactLookup::Revision(r),
            None => ArtifactLookup::Unreadable(format!("{want} has no {REVISION_NUM_ANNOTATION}")),
        };
    }
    ArtifactLookup::NotInArtifact
}

/// Downloads the archive at `url` and reads the unit's revision from it.
pub async fn lookup(url: &str, slug: &str, timeout: Duration) -> ArtifactLookup {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return ArtifactLookup::Unreadable(e.to_string()),
    };
    let response = match http.get(url).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return ArtifactLookup::Unreadable(format!("GET {url}: HTTP {}", r.status())),
        Err(e) => return ArtifactLookup::Unreadable(format!("GET {url}: {e}")),
    };
    if response
        .content_length()
        .is_some_and(|l| l > MAX_ARCHIVE_BYTES)
    {
        return ArtifactLookup::Unreadable(format!("{url} is larger than 64 MiB"));
    }
    match response.bytes().await {
        Ok(bytes) => unit_revision(&bytes, slug),
        Err(e) => ArtifactLookup::Unreadable(format!("GET {url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(text.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            tar.append_data(&mut header, name, text.as_bytes()).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn reads_the_stamp_of_the_units_file() {
        let web = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  annotations:\n    confighub.com/SpaceName: prod\n    confighub.com/RevisionNum: \"13\"\n";
        let bytes = archive(&[("db.yaml", "x: 1\n"), ("web.yaml", web)]);
        assert_eq!(unit_revision(&bytes, "web"), ArtifactLookup::Revision(13));
        assert_eq!(
            unit_revision(&bytes, "cache"),
            ArtifactLookup::NotInArtifact
        );
        assert!(matches!(
            unit_revision(&bytes, "db"),
            ArtifactLookup::Unreadable(_)
        ));
        assert!(matches!(
            unit_revision(b"not gzip", "web"),
            ArtifactLookup::Unreadable(_)
        ));
    }
}
