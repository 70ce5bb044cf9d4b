//! Reader for the IDX format of the MNIST files (gzipped or raw), with every header checked.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// What can be wrong with an IDX file; every variant names the file.
#[derive(Debug, Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The gzip stream is damaged.
    #[error("{path}: corrupt gzip data: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The magic number is not the expected one.
    #[error("{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    Magic {
        /// The file.
        path: PathBuf,
        /// Found magic.
        found: u32,
        /// Expected magic.
        expected: u32,
        /// "images" or "labels".
        what: &'static str,
    },
    /// The header or payload is shorter than the header promises.
    #[error("{path}: truncated: header promises {expected} bytes of data, file has {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes promised by the header.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The payload is longer than the header promises.
    #[error("{path}: {extra} unexpected bytes after the data the header describes")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Number of surplus bytes.
        extra: usize,
    },
    /// Image dimensions other than 28x28.
    #[error("{path}: images are {rows}x{cols}, expected 28x28")]
    Dimensions {
        /// The file.
        path: PathBuf,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
    },
    /// A label outside 0..=9.
    #[error("{path}: label {label} at index {index} is not a digit 0-9")]
    Label {
        /// The file.
        path: PathBuf,
        /// The bad value.
        label: u8,
        /// Its position.
        index: usize,
    },
    /// Images and labels disagree on the number of samples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// Images file.
        images: PathBuf,
        /// Image count.
        n_images: usize,
        /// Labels file.
        labels: PathBuf,
        /// Label count.
        n_labels: usize,
    },
    /// Neither the raw nor the gzipped file exists.
    #[error("{dir}: no {stem} or {stem}.gz (expected the four MNIST IDX files in this directory)")]
    Missing {
        /// The data directory.
        dir: PathBuf,
        /// The file name without `.gz`.
        stem: String,
    },
}

/// Images as a flat row-major array of bytes, `count * rows * cols` long.
#[derive(Debug, Clone)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Pixels, image after image.
    pub pixels: Vec<u8>,
}

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = std::fs::read(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|source| IdxError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn header(path: &Path, bytes: &[u8], words: usize) -> Result<Vec<u32>, IdxError> {
    if bytes.len() < 4 * words {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected: 4 * words,
            found: bytes.len(),
        });
    }
    Ok(bytes[..4 * words]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn check_magic(path: &Path, found: u32, expected: u32, what: &'static str) -> Result<(), IdxError> {
    if found == expected {
        Ok(())
    } else {
        Err(IdxError::Magic {
            path: path.to_path_buf(),
            found,
            expected,
            what,
        })
    }
}

fn payload<'a>(
    path: &Path,
    bytes: &'a [u8],
    offset: usize,
    len: usize,
) -> Result<&'a [u8], IdxError> {
    let found = bytes.len() - offset;
    if found < len {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected: len,
            found,
        });
    }
    if found > len {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            extra: found - len,
        });
    }
    Ok(&bytes[offset..])
}

/// Parses an images file already in memory; `path` is only used in errors.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages, IdxError> {
    let h = header(path, bytes, 4)?;
    check_magic(path, h[0], IMAGES_MAGIC, "images")?;
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    if rows != 28 || cols != 28 {
        return Err(IdxError::Dimensions {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    let pixels = payload(path, bytes, 16, count * rows * cols)?.to_vec();
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parses a labels file already in memory; `path` is only used in errors.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let h = header(path, bytes, 2)?;
    check_magic(path, h[0], LABELS_MAGIC, "labels")?;
    let labels = payload(path, bytes, 8, h[1] as usize)?.to_vec();
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(IdxError::Label {
            path: path.to_path_buf(),
            label,
            index,
        });
    }
    Ok(labels)
}

/// Reads an images file (gzipped or raw).
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    parse_images(path, &read_maybe_gzipped(path)?)
}

/// Reads a labels file (gzipped or raw).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_labels(path, &read_maybe_gzipped(path)?)
}

/// Finds `stem` or `stem.gz` in `dir`, preferring the raw file.
pub fn find_file(dir: &Path, stem: &str) -> Result<PathBuf, IdxError> {
    [stem.to_string(), format!("{stem}.gz")]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| IdxError::Missing {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_bytes(count: u32, rows: u32, cols: u32, payload: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [IMAGES_MAGIC, count, rows, cols] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(7u8, payload));
        b
    }

    fn labels_bytes(count: u32, labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [LABELS_MAGIC, count] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(labels);
        b
    }

    #[test]
    fn reads_well_formed_images_and_labels() {
        let p = Path::new("x");
        let img = parse_images(p, &images_bytes(2, 28, 28, 2 * 784)).unwrap();
        assert_eq!((img.count, img.pixels.len()), (2, 1568));
        assert_eq!(
            parse_labels(p, &labels_bytes(3, &[0, 9, 4])).unwrap(),
            vec![0, 9, 4]
        );
    }

    #[test]
    fn truncated_payload_is_an_error_naming_the_file() {
        let err = parse_images(Path::new("imgs.idx"), &images_bytes(2, 28, 28, 1000)).unwrap_err();
        assert!(matches!(
            err,
            IdxError::Truncated {
                expected: 1568,
                found: 1000,
                ..
            }
        ));
        assert!(err.to_string().starts_with("imgs.idx: truncated"));
    }

    #[test]
    fn truncated_header_is_an_error() {
        let err = parse_labels(Path::new("l"), &[0, 0, 8]).unwrap_err();
        assert!(matches!(err, IdxError::Truncated { .. }));
    }

    #[test]
    fn wrong_magic_is_an_error() {
        let err = parse_labels(Path::new("l"), &images_bytes(1, 28, 28, 784)).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::Magic {
                    found: IMAGES_MAGIC,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_wrong_dims_and_bad_labels_are_errors() {
        let p = Path::new("x");
        assert!(matches!(
            parse_images(p, &images_bytes(1, 28, 28, 785)).unwrap_err(),
            IdxError::TrailingBytes { extra: 1, .. }
        ));
        assert!(matches!(
            parse_images(p, &images_bytes(1, 32, 32, 1024)).unwrap_err(),
            IdxError::Dimensions { rows: 32, .. }
        ));
        assert!(matches!(
            parse_labels(p, &labels_bytes(2, &[1, 12])).unwrap_err(),
            IdxError::Label {
                label: 12,
                index: 1,
                ..
            }
        ));
    }

    #[test]
    fn corrupt_gzip_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("sweep-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("bad.gz"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
