//! A container image with no registry pull: the `qmec` binary and the
//! shared libraries `ldd` lists (with the dynamic loader) copied into a
//! root file system, imported with `docker import` and an entry point.
//! The tag is derived from the binary's size and modification time, so a
//! rebuilt binary gets a new image and an unchanged one is not re-imported.

use crate::error::ShellError;
use crate::shell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the binary lives in the image (the entry point).
pub const ENTRYPOINT: &str = "/usr/local/bin/qmec";
const IMPORT_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("ldd lists no loader for {0}; is it a dynamically linked Linux binary?")]
    NoLoader(PathBuf),
}

/// The libraries `ldd` prints for a binary: absolute paths only
/// (`linux-vdso` has none and is provided by the kernel).
pub fn libraries(ldd_output: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in ldd_output.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    libs.sort();
    libs.dedup();
    libs
}

/// `qmec:<size>-<mtime>` for `exe`.
pub fn tag_for(exe: &Path) -> Result<String, ImageError> {
    let meta = std::fs::metadata(exe).map_err(|source| ImageError::Io { path: exe.to_path_buf(), source })?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    Ok(format!("qmec:{:x}-{:x}", meta.len(), mtime.as_nanos()))
}

fn copy_into(rootfs: &Path, source: &Path, target: &Path) -> Result<(), ImageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Io { path, source }
    };
    let dest = rootfs.join(target.strip_prefix("/").unwrap_or(target));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // Follow symlinks: the image gets the file's content under the name
    // the binary asks for.
    std::fs::copy(source, &dest).map_err(io(source))?;
    Ok(())
}

/// Builds the image for `exe` unless it exists; returns its tag.
pub async fn ensure(exe: &Path) -> Result<String, ImageError> {
    let tag = tag_for(exe)?;
    let exists = shell::run("docker", &shell::args(["image", "inspect", "--format", "{{.Id}}", &tag]), Duration::from_secs(30)).await;
    if exists.is_ok() {
        return Ok(tag);
    }
    build(exe, &tag).await?;
    Ok(tag)
}

/// Assembles the root file system and imports it as `tag`.
pub async fn build(exe: &Path, tag: &str) -> Result<(), ImageError> {
    let ldd = shell::run("ldd", &[exe.display().to_string()], Duration::from_secs(30)).await?;
    let libs = libraries(&ldd);
    if !libs.iter().any(|l| l.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ld-linux"))) {
        return Err(ImageError::NoLoader(exe.to_path_buf()));
    }
    let dir = tempfile::tempdir().map_err(|source| ImageError::Io { path: std::env::temp_dir(), source })?;
    let rootfs = dir.path().join("rootfs");
    copy_into(&rootfs, exe, Path::new(ENTRYPOINT))?;
    for lib in &libs {
        copy_into(&rootfs, lib, lib)?;
    }
    // Scratch space for anything that writes to /tmp.
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|source| ImageError::Io { path: tmp, source })?;
    let tarball = dir.path().join("rootfs.tar");
    let rootfs_arg = rootfs.display().to_string();
    let tar_arg = tarball.display().to_string();
    shell::run("tar", &shell::args(["-C", &rootfs_arg, "-cf", &tar_arg, "."]), IMPORT_LIMIT).await?;
    let change = format!("ENTRYPOINT [\"{ENTRYPOINT}\"]");
    shell::run("docker", &shell::args(["import", "-c", &change, &tar_arg, tag]), IMPORT_LIMIT).await?;
    qmec_proto::agent_process::note(format_args!("image {tag}: {} and {} libraries, no registry pull", exe.display(), libs.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ldd_lines_give_absolute_paths_only() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x7f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        let libs = super::libraries(out);
        let names: Vec<String> = libs.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libz.so.1", "/lib64/ld-linux-x86-64.so.2"]
        );
    }
}
