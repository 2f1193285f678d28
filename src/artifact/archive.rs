//! The reproducible tar.gz: the same files always give the same bytes.
//!
//! Tar: entries sorted by name (byte order), regular files only, ustar headers with mode 0600, mtime 0,
//! uid/gid 0 and empty user/group names — what Flux's own storage writes, minus the host details.
//! Gzip: no file name, mtime 0, OS byte 255 ("unknown"), fixed level [`GZIP_LEVEL`].

use flate2::{Compress, Compression, FlushCompress, Status};

use super::error::BuildError;

/// Gzip level 6: the zlib and Go default that Flux uses, so artifacts are no larger than Flux's own.
/// Going to 9 shrinks Kubernetes YAML by ~1-2 % for ~2× the CPU; 1 costs ~25 % more bytes to store and
/// serve. Changing the level changes every digest, hence every revision, so it is a constant.
pub const GZIP_LEVEL: u32 = 6;

/// File mode of every entry (Flux's `DefaultFileMode`).
pub const FILE_MODE: u32 = 0o600;

/// Writes `files` (name, content) as a reproducible tar.gz. Input order does not matter; names must be
/// unique and already safe (see [`super::names`]).
pub fn write_tar_gz(files: &[(&str, &[u8])]) -> Result<Vec<u8>, BuildError> {
    let mut sorted: Vec<&(&str, &[u8])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let payload: usize = files.iter().map(|(_, d)| d.len() + 1024).sum();
    let mut tar = Vec::with_capacity(payload + 1024);
    for (name, data) in sorted {
        append_entry(&mut tar, name, data)?;
    }
    // End of archive: two zero blocks.
    tar.resize(tar.len() + 1024, 0);
    gzip(&tar)
}

fn append_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) -> Result<(), BuildError> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .map_err(|e| BuildError::Archive(format!("entry {name:?}: {e}")))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(FILE_MODE);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
        .set_username("")
        .and_then(|()| header.set_groupname(""))
        .map_err(|e| BuildError::Archive(format!("entry {name:?}: {e}")))?;
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.resize(out.len() + pad, 0);
    Ok(())
}

/// Tar bytes per deflate segment. Fixed (never derived from the core count), so the output is the same
/// on every machine; large enough that the 32 KiB preset dictionary makes the cost of cutting ~nil.
const SEGMENT: usize = 1024 * 1024;
/// Deflate's window: each segment is primed with the 32 KiB before it, as pigz does.
const WINDOW: usize = 32 * 1024;

/// Gzip of `data`, compressed in independent deflate segments on several threads.
///
/// Each segment is a raw deflate stream primed with the previous 32 KiB as a dictionary and ended with a
/// sync flush (byte-aligned, not final); the last one is finished. Their concatenation is one valid
/// deflate stream, so any gunzip reads it as a single member. The bytes depend only on `data`.
fn gzip(data: &[u8]) -> Result<Vec<u8>, BuildError> {
    let segments: Vec<&[u8]> = data.chunks(SEGMENT).collect();
    let last = segments.len().saturating_sub(1);
    let parts = super::par::map(
        &segments,
        |s| s.len(),
        2 * SEGMENT,
        |i, segment| {
            let start = i * SEGMENT;
            let dictionary = &data[start.saturating_sub(WINDOW)..start];
            let mut crc = flate2::Crc::new();
            crc.update(segment);
            deflate_segment(segment, dictionary, i == last).map(|d| (d, crc))
        },
    );
    let compressed: usize = parts
        .iter()
        .map(|p| p.as_ref().map_or(0, |(d, _)| d.len()))
        .sum();
    let mut out = Vec::with_capacity(compressed + 18);
    // Magic, deflate, no flags, mtime 0, no extra flags, OS 255 (unknown).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    if segments.is_empty() {
        // An empty final stored block... never reached in practice (a tar is at least 1 KiB).
        out.extend_from_slice(&deflate_segment(&[], &[], true)?);
    }
    let mut crc = flate2::Crc::new();
    for part in parts {
        let (deflated, part_crc) = part?;
        out.extend_from_slice(&deflated);
        crc.combine(&part_crc);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

fn deflate_segment(input: &[u8], dictionary: &[u8], finish: bool) -> Result<Vec<u8>, BuildError> {
    let fail = |e: flate2::CompressError| BuildError::Archive(format!("deflate: {e}"));
    let mut compress = Compress::new(Compression::new(GZIP_LEVEL), false);
    if !dictionary.is_empty() {
        compress.set_dictionary(dictionary).map_err(fail)?;
    }
    let flush = if finish {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 3 + 1024);
    loop {
        let consumed = usize::try_from(compress.total_in()).unwrap_or(input.len());
        let status = compress
            .compress_vec(&input[consumed.min(input.len())..], &mut out, flush)
            .map_err(fail)?;
        let all_in = compress.total_in() as usize >= input.len();
        let done = if finish {
            status == Status::StreamEnd
        } else {
            // A sync flush is complete once all input is in and the output was not filled up.
            all_in && out.len() < out.capacity()
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_is_reproducible_and_sorted() {
        let a = write_tar_gz(&[("b.yaml", b"b: 1\n"), ("a.yaml", b"a: 1\n")]).unwrap();
        let b = write_tar_gz(&[("a.yaml", b"a: 1\n"), ("b.yaml", b"b: 1\n")]).unwrap();
        assert_eq!(a, b);
        // Fixed gzip header: magic, deflate, no flags, mtime 0, OS 255.
        assert_eq!(&a[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(a[9], 255);
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        let mut names = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.mode().unwrap(), 0o600);
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(h.groupname().unwrap(), Some(""));
            assert!(h.entry_type().is_file());
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            names.push((name, body));
        }
        assert_eq!(
            names,
            vec![
                ("a.yaml".to_string(), "a: 1\n".to_string()),
                ("b.yaml".to_string(), "b: 1\n".to_string())
            ]
        );
    }

    #[test]
    fn multi_segment_gzip_round_trips_as_one_member() {
        // Several segments, compressible and not, with a size not a multiple of the segment.
        let mut data = Vec::new();
        let mut x: u32 = 1;
        while data.len() < 3 * SEGMENT + 12345 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if (x >> 16).is_multiple_of(3) {
                data.extend_from_slice(b"apiVersion: v1\nkind: ConfigMap\n");
            } else {
                data.push((x >> 24) as u8);
            }
        }
        let gz = gzip(&data).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(gzip(&data).unwrap(), gz);
        // Also readable by a strict single-member reader that checks CRC and length.
        let mut strict = Vec::new();
        flate2::bufread::GzDecoder::new(&gz[..])
            .read_to_end(&mut strict)
            .unwrap();
        assert_eq!(strict.len(), data.len());
    }

    #[test]
    fn empty_archive_is_valid() {
        let a = write_tar_gz(&[]).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        assert_eq!(tar.entries().unwrap().count(), 0);
    }
}
