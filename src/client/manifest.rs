//! `manifest.json` of an export directory (docs/file-exchange.md): what `doudi export` wrote, and what
//! `doudi push DIR` checks before sending anything.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::format::FileFormat;

/// The manifest's file name inside an export directory.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 1.
    pub format_version: u32,
    /// The hub the facts were read from.
    pub hub: String,
    /// The agency that read them (its certificate's agency code).
    pub agency: String,
    /// The business date the facts are in force on.
    pub as_of: String,
    /// When the export was made (RFC 3339, UTC).
    pub created_at: String,
    /// The division filter, empty = everything in the agency's scope.
    #[serde(default)]
    pub division_code: String,
    /// Format of the fact files; absent in a snapshot export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// Always "utf-8".
    pub encoding: String,
    pub files: Vec<ManifestFile>,
    /// Set in a snapshot export (`doudi export --snapshot QUARTER`): the frozen quarter the files render.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
}

/// The header of the snapshot a snapshot export renders (coordination.proto `Snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub quarter: String,
    /// Hex SHA-256 of the snapshot's canonical content (docs/snapshot-format.md).
    pub content_hash: String,
    #[serde(default)]
    pub previous_quarter: String,
    pub previous_hash: String,
    /// RFC 3339, UTC.
    pub knowledge_cutoff: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name inside the directory.
    pub name: String,
    /// Payload kind of every row; `quarterly_summary` in a snapshot export.
    pub kind: String,
    /// Data rows (CSV: not counting the header); absent for the files of a snapshot export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Manifest {
    /// Read `dir/manifest.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let p = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let m: Manifest =
            serde_json::from_str(&text).with_context(|| format!("{} is not a doudi manifest", p.display()))?;
        if m.format_version != 1 {
            anyhow::bail!("{}: format_version {} is not supported (1 is)", p.display(), m.format_version);
        }
        for f in &m.files {
            if f.name.is_empty() || f.name.contains(['/', '\\']) || f.name.starts_with('.') {
                anyhow::bail!("{}: file name {:?} must be a plain name inside the directory", p.display(), f.name);
            }
        }
        Ok(m)
    }

    /// The path of each listed file.
    pub fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.files.iter().map(|f| dir.join(&f.name)).collect()
    }
}
