//! An export's output, written so that it appears whole or not at all, and never over
//! anything: a file is written and synced under a temporary sibling name, then linked into
//! place (which fails if the name was taken meanwhile); a folder is built in a staging
//! sibling, then renamed into place (which fails if the name holds a non-empty folder).

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ServeError;
use crate::journal::sync_dir;

/// Refuses an `output` that exists (a file, a link, or a folder that is not empty; an empty
/// folder is allowed when `allow_empty_folder`).
pub(super) fn refuse_existing(output: &Path, allow_empty_folder: bool) -> Result<(), ServeError> {
    let exists = || ServeError::OutputExists {
        path: output.to_path_buf(),
    };
    match fs::symlink_metadata(output) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServeError::io(output, e)),
        Ok(meta) if allow_empty_folder && meta.is_dir() => {
            let mut entries = fs::read_dir(output).map_err(|e| ServeError::io(output, e))?;
            if entries.next().is_none() {
                Ok(())
            } else {
                Err(exists())
            }
        }
        Ok(_) => Err(exists()),
    }
}

/// The folder `output` is written in (created if missing) and a fresh hidden sibling name
/// for its temporary file or staging folder.
fn sibling(output: &Path, what: &str) -> Result<(PathBuf, PathBuf), ServeError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = output.file_name().ok_or_else(|| {
        ServeError::Config(format!(
            "{} does not name a file or folder",
            output.display()
        ))
    })?;
    let parent = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| ServeError::io(&parent, e))?;
    let temp = parent.join(format!(
        ".{}.{what}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    Ok((parent, temp))
}

/// Creates `path` (which must not exist) with `bytes`, synced.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ServeError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ServeError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ServeError::io(path, e))
}

/// Writes `bytes` to the new file `output`, atomically, never over an existing one.
pub(super) fn write_new_file(output: &Path, bytes: &[u8]) -> Result<(), ServeError> {
    refuse_existing(output, false)?;
    let (parent, temp) = sibling(output, "export")?;
    if let Err(e) = write_synced(&temp, bytes) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    let placed = match fs::hard_link(&temp, output) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(ServeError::OutputExists {
            path: output.to_path_buf(),
        }),
        // No hard links on this file system: one more check, then a rename.
        Err(_) => refuse_existing(output, false)
            .and_then(|()| fs::rename(&temp, output).map_err(|e| ServeError::io(output, e))),
        Ok(()) => Ok(()),
    };
    let _ = fs::remove_file(&temp);
    placed?;
    sync_dir(&parent).map_err(|e| ServeError::io(&parent, e))
}

/// Builds a folder with `build` in a staging sibling of `output`, then renames it into place
/// (over nothing, or over an empty folder); on any failure the staging folder is removed and
/// `output` is left as it was.
pub(super) fn write_new_folder<T>(
    output: &Path,
    build: impl FnOnce(&Path) -> Result<T, ServeError>,
) -> Result<T, ServeError> {
    refuse_existing(output, true)?;
    let (parent, staging) = sibling(output, "staging")?;
    fs::create_dir(&staging).map_err(|e| ServeError::io(&staging, e))?;
    let built = build(&staging).and_then(|value| {
        sync_dir(&staging).map_err(|e| ServeError::io(&staging, e))?;
        // A folder that became non-empty (or a file) meanwhile makes the rename fail.
        refuse_existing(output, true)?;
        fs::rename(&staging, output).map_err(|e| match refuse_existing(output, true) {
            Err(taken @ ServeError::OutputExists { .. }) => taken,
            _ => ServeError::io(output, e),
        })?;
        Ok(value)
    });
    if built.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    let value = built?;
    sync_dir(&parent).map_err(|e| ServeError::io(&parent, e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_written_once_and_never_over_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("labels.csv");
        write_new_file(&out, b"first").expect("writes");
        assert_eq!(fs::read(&out).expect("reads"), b"first");
        let err = write_new_file(&out, b"second").expect_err("exists");
        assert!(matches!(err, ServeError::OutputExists { ref path } if path == &out));
        assert_eq!(fs::read(&out).expect("reads"), b"first");
        assert_eq!(
            leftovers(dir.path()),
            ["labels.csv"],
            "no temporary file left"
        );
        let nested = dir.path().join("new").join("labels.json");
        write_new_file(&nested, b"{}").expect("makes the parent folder");
        assert_eq!(fs::read(&nested).expect("reads"), b"{}");
    }

    #[test]
    fn a_folder_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("export");
        let err = write_new_folder(&out, |staging| {
            write_synced(&staging.join("a"), b"a")?;
            Err::<(), _>(ServeError::Config("failed half-way".into()))
        })
        .expect_err("fails");
        assert!(err.to_string().contains("half-way"));
        assert!(!out.exists());
        assert!(
            leftovers(dir.path()).is_empty(),
            "the staging folder is gone"
        );
        fs::create_dir(&out).expect("an empty folder");
        write_new_folder(&out, |staging| write_synced(&staging.join("a"), b"a"))
            .expect("over an empty folder");
        assert_eq!(fs::read(out.join("a")).expect("reads"), b"a");
        let err = write_new_folder(&out, |_| Ok(())).expect_err("not empty");
        assert!(matches!(err, ServeError::OutputExists { .. }));
        assert_eq!(leftovers(&out), ["a"]);
        assert_eq!(leftovers(dir.path()), ["export"]);
    }
}
