//! The optional `credential-process --cache`: the bundle kept on disk until shortly before it
//! expires, so each AWS CLI call does not cost a Key Vault read.
//!
//! Private to the user: the directory is 0700 and the file 0600 (written atomically), under
//! `$XDG_CACHE_HOME/stsbridge` or `~/.cache/stsbridge`, like the AWS CLI's own credential cache.
//! A cache entry is used only while it has more than the `--min-remaining` margin left.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::files::{private_dir, write_private};
use crate::secrets::SessionCredentials;

/// The cache file for one bundle.
pub fn path_for(vault_and_secret: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    // FNV-1a: a stable, dependency-free file name; not a security boundary.
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in vault_and_secret.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    Some(
        base.join("stsbridge")
            .join(format!("credential-process-{hash:016x}.json")),
    )
}

/// The cached credentials, if present and good for longer than `margin`.
pub fn read(
    path: &std::path::Path,
    margin: chrono::Duration,
    now: DateTime<Utc>,
) -> Option<SessionCredentials> {
    let text = std::fs::read_to_string(path).ok()?;
    let c = SessionCredentials::from_process_json(&text).ok()?;
    (c.expiration.signed_duration_since(now) > margin).then_some(c)
}

/// Stores the credentials.
pub fn write(path: &std::path::Path, c: &SessionCredentials) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    write_private(path, c.to_process_json().expose_secret().as_bytes())
}
