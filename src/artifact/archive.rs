//! The reproducible tar.gz: the same files always give the same bytes.
//!
//! Tar: entries sorted by name (byte order), regular files only, ustar headers with mode 0600, mtime 0,
//! uid/gid 0 and empty user/group names — what Flux's own storage writes, minus the host details.
//! Gzip: no file name, mtime 0, OS byte 255 ("unknown"), fixed level [`GZIP_LEVEL`].

use flate2::{Compress, Compression, FlushCompress, Status};

use super::error::BuildError;

/// Gzip level 7. zlib-rs (like zlib-ng) runs levels 4-6 with a faster "medium" matcher that, on
/// Kubernetes YAML, compresses about 0.7 % worse than Go's level 6, which Flux uses; level 7 is the
/// first of the lazy levels and comes out ~1.5 % smaller than Flux for ~10 % more gzip CPU. Level 8
/// shrinks another ~5 % for about twice the CPU. Changing the level changes every digest, hence every
/// revision, so it is a constant (see docs/benchmarks.md for the measurements).
pub const GZIP_LEVEL: u32 = 7;

/// File mode of every entry (Flux's `DefaultFileMode`).
pub const FILE_MODE: u32 = 0o600;

/// Writes `files` (name, content as consecutive slices) as a reproducible tar.gz. Input order does not matter; names must be
/// unique and already safe (see [`super::names`]).
///
/// The tar stream is never assembled in one buffer: it is described as a list of slices (headers, file
/// contents, zero padding), and each gzip segment copies just its own part. That saves a copy of the
/// whole payload and its memory.
pub fn write_tar_gz(files: &[(&str, &[&[u8]])]) -> Result<Vec<u8>, BuildError> {
    let mut sorted: Vec<&(&str, &[&[u8]])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let slices: usize = sorted.iter().map(|(_, c)| c.len()).sum();
    let mut pieces: Vec<Piece<'_>> = Vec::with_capacity(slices + 2 * sorted.len() + 1);
    for (name, content) in sorted {
        let size: usize = content.iter().map(|s| s.len()).sum();
        // Built when its segment copies it; a name ustar cannot hold fails there, in stream order.
        pieces.push(Piece::Header(name, size));
        pieces.extend(content.iter().map(|s| Piece::Bytes(s)));
        let pad = (512 - size % 512) % 512;
        if pad > 0 {
            pieces.push(Piece::Bytes(&ZEROS[..pad]));
        }
    }
    // End of archive: two zero blocks.
    pieces.push(Piece::Bytes(&ZEROS));
    gzip(&Pieces::new(pieces))
}

static ZEROS: [u8; 1024] = [0; 1024];

fn header(name: &str, size: usize) -> Result<[u8; 512], BuildError> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .map_err(|e| BuildError::Archive(format!("entry {name:?}: {e}")))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size as u64);
    header.set_mode(FILE_MODE);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
        .set_username("")
        .and_then(|()| header.set_groupname(""))
        .map_err(|e| BuildError::Archive(format!("entry {name:?}: {e}")))?;
    header.set_cksum();
    Ok(*header.as_bytes())
}

/// Part of the tar stream: borrowed bytes, or a ustar header (entry name, size) made when copied, so
/// 10,000 headers never sit in memory at once.
enum Piece<'a> {
    Bytes(&'a [u8]),
    Header(&'a str, usize),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Header(..) => 512,
        }
    }
}

/// A byte stream made of [`Piece`]s, read by range.
struct Pieces<'a> {
    pieces: Vec<Piece<'a>>,
    /// Offset of each piece in the stream.
    starts: Vec<usize>,
    len: usize,
}

impl<'a> Pieces<'a> {
    fn new(pieces: Vec<Piece<'a>>) -> Self {
        let mut starts = Vec::with_capacity(pieces.len());
        let mut len = 0;
        for piece in &pieces {
            starts.push(len);
            len += piece.len();
        }
        Pieces {
            pieces,
            starts,
            len,
        }
    }

    /// Appends stream bytes `from..to` to `out`.
    fn copy_range(&self, from: usize, to: usize, out: &mut Vec<u8>) -> Result<(), BuildError> {
        let mut at = self
            .starts
            .partition_point(|&s| s <= from)
            .saturating_sub(1);
        let mut pos = from;
        while pos < to && at < self.pieces.len() {
            let piece = &self.pieces[at];
            let offset = pos - self.starts[at];
            let take = (piece.len() - offset).min(to - pos);
            match piece {
                Piece::Bytes(b) => out.extend_from_slice(&b[offset..offset + take]),
                Piece::Header(name, size) => {
                    out.extend_from_slice(&header(name, *size)?[offset..offset + take]);
                }
            }
            pos += take;
            at += 1;
        }
        Ok(())
    }
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
fn gzip(data: &Pieces<'_>) -> Result<Vec<u8>, BuildError> {
    let count = data.len.div_ceil(SEGMENT);
    let segments: Vec<usize> = (0..count).collect();
    let last = count.saturating_sub(1);
    // Each thread reuses one input buffer and one compressor (reset between segments): fresh
    // megabyte-sized allocations per segment cost more in page faults than the copying itself.
    let parts = super::par::map_with(
        &segments,
        |_| SEGMENT,
        2 * SEGMENT,
        || {
            (
                Vec::with_capacity(WINDOW + SEGMENT),
                Compress::new(Compression::new(GZIP_LEVEL), false),
            )
        },
        |(buf, compress), _, &i| {
            let start = i * SEGMENT;
            let end = (start + SEGMENT).min(data.len);
            let primed = start.saturating_sub(WINDOW);
            buf.clear();
            data.copy_range(primed, end, buf)?;
            let (dictionary, segment) = buf.split_at(start - primed);
            let mut crc = flate2::Crc::new();
            crc.update(segment);
            compress.reset();
            deflate_segment(compress, segment, dictionary, i == last).map(|d| (d, crc))
        },
    );
    let compressed: usize = parts
        .iter()
        .map(|p| p.as_ref().map_or(0, |(d, _)| d.len()))
        .sum();
    let mut out = Vec::with_capacity(compressed + 18);
    // Magic, deflate, no flags, mtime 0, no extra flags, OS 255 (unknown).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    if count == 0 {
        // An empty final stored block... never reached in practice (a tar is at least 1 KiB).
        let mut compress = Compress::new(Compression::new(GZIP_LEVEL), false);
        out.extend_from_slice(&deflate_segment(&mut compress, &[], &[], true)?);
    }
    let mut crc = flate2::Crc::new();
    for part in parts {
        let (deflated, part_crc) = part?;
        out.extend_from_slice(&deflated);
        crc.combine(&part_crc);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len as u32).to_le_bytes());
    Ok(out)
}

/// Deflates one segment with a fresh (or freshly reset) raw compressor.
fn deflate_segment(
    compress: &mut Compress,
    input: &[u8],
    dictionary: &[u8],
    finish: bool,
) -> Result<Vec<u8>, BuildError> {
    let fail = |e: flate2::CompressError| BuildError::Archive(format!("deflate: {e}"));
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
        let a = write_tar_gz(&[("b.yaml", &[b"b: 1\n"]), ("a.yaml", &[b"a: ", b"1\n"])]).unwrap();
        let b =
            write_tar_gz(&[("a.yaml", &[b"a: 1\n"]), ("b.yaml", &[b"b", b"", b": 1\n"])]).unwrap();
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
        let gz = gzip(&Pieces::new(vec![Piece::Bytes(&data)])).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Cut into uneven pieces, the stream and so the output are the same.
        let (a, rest) = data.split_at(7);
        let (b, c) = rest.split_at(SEGMENT + 3);
        let cut = vec![
            Piece::Bytes(a),
            Piece::Bytes(&[]),
            Piece::Bytes(b),
            Piece::Bytes(c),
        ];
        assert_eq!(gzip(&Pieces::new(cut)).unwrap(), gz);
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
