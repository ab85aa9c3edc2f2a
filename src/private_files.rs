//! Folders and files that hold the database, mail with one-time links, or key material: the
//! service's own user may read them, nobody else. Created that way, and tightened at start-up if an
//! earlier version (or a careless copy) left them readable by others.

use std::io;
use std::path::Path;

/// Creates `path` (and missing parents) as a folder only its owner may enter; an existing one
/// loses any access for group and others.
pub fn private_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(path)?;
    owner_only(path, 0o700)
}

/// Makes an existing file readable and writable by its owner only; a missing one is created
/// (empty) that way, so whatever writes it later inherits nothing wider.
pub fn private_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
    }
    owner_only(path, 0o600)
}

/// Tightens an existing file's mode to `mode`, if it is not already as tight.
pub fn tighten_if_present(path: &Path, mode: u32) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => owner_only(path, mode),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn owner_only(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "tightened permissions");
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
