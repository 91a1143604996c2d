//! `type: FILESYSTEM`: a local directory as a bucket (Thanos `providers/filesystem`).
//!
//! Fields: `directory` (required). Thanos reads this section leniently; we reject unknown
//! fields like everywhere else, since a misspelt key would otherwise go unnoticed.
//!
//! A missing directory is created by [`open`]. Thanos creates it lazily on the first upload
//! and lists a missing one as empty, so the observable behaviour is the same; `object_store`'s
//! `LocalFileSystem` needs the root to exist (it canonicalizes it). Writes are fsynced (file
//! and directory) because compactd's correctness rests on `meta.json` and deletion marks
//! surviving a crash, and deleting the last object of a "directory" removes the emptied
//! directories, as Thanos does, so a deleted block does not linger as an empty prefix.
//! Conditional writes: `PutMode::Create` works (hard link), `PutMode::Update` does not.

use object_store::local::LocalFileSystem;
use serde::Deserialize;

use super::yaml::{parse_section, Text};
use super::{OpenError, Opened, Unwrapped};

/// The parsed FILESYSTEM section.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The directory, as written.
    pub directory: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    directory: Text,
}

/// Parses and validates the section.
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let raw: Raw = parse_section(text)?;
    if raw.directory.trimmed().is_empty() {
        return Err("missing field \"directory\"".into());
    }
    Ok(Config {
        directory: raw.directory.0,
    })
}

/// Creates the directory if needed and opens it.
pub(super) fn open(cfg: &Config) -> Result<Opened, OpenError> {
    std::fs::create_dir_all(&cfg.directory)
        .map_err(|e| OpenError::Invalid(format!("creating directory {}: {e}", cfg.directory)))?;
    let store = LocalFileSystem::new_with_prefix(&cfg.directory)?
        .with_automatic_cleanup(true)
        .with_fsync(true);
    Ok(Opened {
        store: Unwrapped::Local(store),
        conditional_update: false,
        part_size_bytes: Some(super::s3::DEFAULT_PART_SIZE),
    })
}

/// One line for the log.
pub(crate) fn describe(cfg: &Config) -> String {
    format!("FILESYSTEM directory={}", cfg.directory)
}
