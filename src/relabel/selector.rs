//! `--selector.relabel-config-file` / `--selector.relabel-config`: the relabel rules that pick
//! the blocks this instance acts on, loaded as Thanos loads them (`extflag.PathOrContent`
//! with environment substitution, then `block.ParseRelabelConfig` with
//! `SelectorSupportedRelabelActions`):
//! - at most one of the two flags (Thanos refuses both); neither, an empty file or an empty
//!   value select every block;
//! - `$(NAME)` is replaced by the environment variable NAME (unset is an error);
//! - only `keep`, `drop` and `hashmod` are allowed, the actions Thanos supports here.
//!
//! The view applies the rules (`core::view`); this module reads the flags.

use std::path::Path;

use super::{parse_relabel_config, Action, RelabelConfig, RelabelError};

/// The file flag.
pub const FILE_FLAG: &str = "--selector.relabel-config-file";
/// The inline flag.
pub const INLINE_FLAG: &str = "--selector.relabel-config";
/// The label carrying a block's ULID during selection (Thanos' `block.BlockIDLabel`).
pub const BLOCK_ID_LABEL: &str = "__block_id";
/// The actions Thanos accepts for block selection.
pub const SELECTOR_ACTIONS: [Action; 3] = [Action::Keep, Action::Drop, Action::HashMod];

/// Why the selector flags were refused; the message names the flag (and the file) and says
/// all (no error chain, so that `{e:#}` does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    /// Both flags were given.
    #[error("both {FILE_FLAG} and {INLINE_FLAG} are set; use one")]
    BothFlags,
    /// The file could not be read.
    #[error("{FILE_FLAG} {path}: cannot read it: {reason}")]
    Read {
        /// The file as given.
        path: String,
        /// The operating system's reason.
        reason: std::io::Error,
    },
    /// A `$(NAME)` reference names an unset environment variable.
    #[error("{origin}: {message}")]
    Environment {
        /// The file flag and the file, or the inline flag.
        origin: String,
        /// Which variable.
        message: String,
    },
    /// The content is not a valid selector.
    #[error("{origin}: {reason}")]
    Invalid {
        /// The file flag and the file, or the inline flag.
        origin: String,
        /// What is wrong, naming the rule and the field.
        reason: RelabelError,
    },
}

/// Loads the selector from the flags' values (an empty path or value counts as not given).
pub fn load_selector(
    file: Option<&Path>,
    inline: Option<&str>,
) -> Result<Vec<RelabelConfig>, SelectorError> {
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let inline = inline.filter(|s| !s.is_empty());
    let (content, origin) = match (file, inline) {
        (Some(_), Some(_)) => return Err(SelectorError::BothFlags),
        (None, None) => return Ok(Vec::new()),
        (Some(path), None) => {
            let content = std::fs::read_to_string(path).map_err(|reason| SelectorError::Read {
                path: path.display().to_string(),
                reason,
            })?;
            (content, format!("{FILE_FLAG} {}", path.display()))
        }
        (None, Some(text)) => (text.to_string(), INLINE_FLAG.to_string()),
    };
    let content = crate::objstore::expand_env(&content, |name| std::env::var(name).ok()).map_err(
        |message| SelectorError::Environment {
            origin: origin.clone(),
            message,
        },
    )?;
    parse_selector(&content).map_err(|reason| SelectorError::Invalid { origin, reason })
}

/// Parses selector rules: a relabel config whose actions are all in [`SELECTOR_ACTIONS`].
pub fn parse_selector(yaml: &str) -> Result<Vec<RelabelConfig>, RelabelError> {
    let rules = parse_relabel_config(yaml)?;
    if let Some((i, rule)) = rules
        .iter()
        .enumerate()
        .find(|(_, r)| !SELECTOR_ACTIONS.contains(&r.action))
    {
        return Err(RelabelError::Field {
            rule: i + 1,
            field: "action",
            message: format!(
                "{} is not supported for selecting blocks (Thanos supports keep, drop and hashmod)",
                rule.action
            ),
        });
    }
    Ok(rules)
}
