//! What a run folder holds, printed after a run so that a reader knows
//! which file to open without reading the README first.

use std::fmt::Write as _;
use std::path::Path;

/// Every file or folder a run may write, with what it holds. Names not
/// listed here are still shown, without a description.
const CONTENTS: [(&str, &str); 15] = [
    ("scenario.toml", "the resolved scenario"),
    ("summary.json", "the figures printed above"),
    ("slots.csv", "one row per slot (model time)"),
    ("tasks.csv", "one row per completed task (model time)"),
    ("testbed.json", "wall-clock figures, late reports, bit conservation, CPU per process"),
    ("controller_slots.csv", "per slot: decision time, slot loop, report wait"),
    ("records", "each agent's raw records, merged into the files above"),
    ("logs", "agents' logs that are not empty"),
    ("emulation.json", "which link emulator ran, and why"),
    ("link-profile.toml", "the resolved link profile"),
    ("virtual.json", "virtual time covered and the wall time it took"),
    ("docker-compose.yml", "the compose file the containers ran from"),
    ("stack.yml", "the Docker Swarm stack file the services ran from"),
    (qmec_qnn::online::CHECKPOINT_FILE, "the model learned online (loads with --model)"),
    ("tls", "certificates copied in for the containers"),
];

/// One line per entry of `dir`, sorted: name, size and what it holds.
pub fn listing(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else { return String::new() };
    let mut names: Vec<(String, u64, bool)> = entries
        .flatten()
        .map(|e| {
            let is_dir = e.path().is_dir();
            (e.file_name().to_string_lossy().into_owned(), size(&e.path()), is_dir)
        })
        .collect();
    names.sort();
    let mut out = String::new();
    for (name, bytes, is_dir) in names {
        let shown = if is_dir { format!("{name}/") } else { name.clone() };
        let what = CONTENTS.iter().find(|(known, _)| *known == name).map_or("", |(_, what)| what);
        let _ = writeln!(out, "  {shown:<22}{:>10}  {what}", human(bytes));
    }
    out
}

/// Bytes in a file, or in every file below a folder.
fn size(path: &Path) -> u64 {
    if !path.is_dir() {
        return path.metadata().map_or(0, |m| m.len());
    }
    std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| size(&e.path())).sum())
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_run_folder_is_listed_with_sizes_and_meanings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slots.csv"), vec![b'x'; 2048]).unwrap();
        std::fs::create_dir(dir.path().join("records")).unwrap();
        std::fs::write(dir.path().join("records/controller.json"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let listing = super::listing(dir.path());
        let lines: Vec<&str> = listing.lines().map(str::trim_end).collect();
        assert_eq!(lines.len(), 3, "{listing}");
        assert!(lines[0].starts_with("  notes.txt") && lines[0].ends_with("0 B"), "{listing}");
        assert!(lines[1].contains("records/") && lines[1].contains("2 B") && lines[1].contains("raw records"), "{listing}");
        assert!(lines[2].contains("2.0 KiB") && lines[2].contains("one row per slot"), "{listing}");
    }
}
