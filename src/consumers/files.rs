//! Writing files that hold credentials: atomically, and private to the user.
//!
//! A temporary file is created next to the target with mode 0600 (never readable by others,
//! not even for an instant), written, flushed to disk, and renamed over the target, so a reader
//! sees the old file or the new one, never half of one, and a crash leaves the old file intact.
//! The temporary file is `tempfile`'s: removed on every error and on a panic (only a process
//! killed outright between the write and the rename leaves one, with a random name).
//!
//! File modes apply on Unix only. On Windows the files get the directory's inherited ACL, which
//! for a profile directory is already private to the user; stsbridge does not change ACLs.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `contents`, atomically, with mode 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the target has no file name")?;
    // tempfile creates the file 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.stsbridge-"))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing a temporary file in {}", dir.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// A directory of stsbridge's own (a cache) private to the user: created 0700 (with its
/// parents) when missing, and tightened to 0700 when it exists with wider permissions.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return create_private(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private (0700)", dir.display()))?;
        }
    }
    Ok(())
}

/// A directory the user owns (`~/.aws`): created 0700 when missing, left as it is otherwise.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    create_private(dir)
}

fn create_private(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "old").unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_failed_replace_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails.
        let path = dir.path().join("credentials");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), "keep").unwrap();
        assert!(write_private(&path, b"new").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("credentials")]);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_private_directory_is_tightened_and_a_users_directory_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("cache");
        let theirs = dir.path().join("aws");
        for d in [&ours, &theirs] {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        private_dir(&ours).unwrap();
        ensure_dir(&theirs).unwrap();
        let mode = |d: &Path| std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), 0o700);
        assert_eq!(mode(&theirs), 0o755);
        let fresh = dir.path().join("new/deeper");
        ensure_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }
}
