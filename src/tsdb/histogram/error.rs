//! Errors of the histogram codec: chunk data that does not decode (with the byte offset in the
//! chunk data), encodings it does not handle, and histograms the encoder cannot store.

use std::path::Path;

use super::super::error::TsdbError;
use super::{ENCODING_FLOAT_HISTOGRAM_ST, ENCODING_HISTOGRAM_ST};
use crate::tsdb::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};

/// Why histogram chunk data could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    /// The chunk data does not follow the format.
    #[error(
        "{} chunk: {what} (sample {sample}, byte {byte_offset} of the chunk data)",
        encoding_name(*.encoding)
    )]
    Corrupt {
        /// The chunk's encoding byte.
        encoding: u8,
        /// Offset in the chunk data (header included) of the byte where decoding stopped.
        byte_offset: usize,
        /// Index of the sample being decoded.
        sample: u16,
        /// What is wrong.
        what: String,
    },
    /// The encoding is not one this codec reads.
    #[error("chunk encoding {encoding} ({}): {what}", encoding_name(*.encoding))]
    Unsupported {
        /// The encoding byte.
        encoding: u8,
        /// Why it is not supported.
        what: &'static str,
    },
    /// A histogram given to the encoder cannot be stored.
    #[error("histogram sample at t={t}: {what}")]
    Invalid {
        /// The sample's timestamp.
        t: i64,
        /// What is wrong with it.
        what: String,
    },
}

impl HistogramError {
    /// A [`TsdbError::Corrupt`] for a chunk whose data starts at `data_offset` in `file`.
    pub fn into_corrupt(self, file: &Path, data_offset: u64) -> TsdbError {
        let offset = match &self {
            HistogramError::Corrupt { byte_offset, .. } => data_offset + *byte_offset as u64,
            _ => data_offset,
        };
        TsdbError::corrupt(file, offset, self.to_string())
    }
}

/// A readable name of a chunk encoding.
pub fn encoding_name(encoding: u8) -> &'static str {
    match encoding {
        ENCODING_HISTOGRAM => "histogram",
        ENCODING_FLOAT_HISTOGRAM => "float histogram",
        ENCODING_HISTOGRAM_ST => "histogram with start timestamps",
        ENCODING_FLOAT_HISTOGRAM_ST => "float histogram with start timestamps",
        1 => "XOR",
        4 => "XOR2",
        0xff => "Thanos aggregate",
        _ => "unknown",
    }
}
