//! Every command the README shows works as written. Each `qmec …` and
//! `cargo run … -- …` line of README.md's `sh` blocks runs through the real
//! binary, in order, in one scratch folder (so a later command finds the
//! files an earlier one wrote, as it would for a reader), with its work cut
//! to a few slots, epochs or states by the budget flags below. Only the
//! commands in [`SKIPPED`] are left out, each for the reason given there.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Commands that cannot run in the test suite, by a piece of their text.
const SKIPPED: [(&str, &str); 4] = [
    ("--runtime docker", "needs Docker Engine and root (cli/tests/integration/testbed_emulated.rs runs it where both exist)"),
    ("--runtime swarm", "needs Docker Engine in swarm mode (cli/tests/integration/testbed_swarm.rs runs it where it exists)"),
    ("--runtime netns", "needs root for network namespaces (cli/tests/integration/testbed_emulated.rs runs it as root)"),
    ("--policy external=", "needs the example policy service running (cli/tests/integration/external_policy.rs starts it and runs this testbed)"),
];

/// Per subcommand, the flags that bound its work: each replaces the
/// README's value of that flag or is appended. The commands stay what the
/// README says in every other respect.
const BUDGETS: [(&str, &[(&str, &str)]); 8] = [
    ("simulate", &[("--slots", "20")]),
    ("compare", &[("--slots", "20")]),
    ("testbed", &[("--slots", "20")]),
    ("evaluate", &[("--states", "3")]),
    ("train", &[("--epochs", "2"), ("--train-states", "64"), ("--val-states", "16"), ("--eval-every", "1")]),
    ("train-closed-loop", &[("--iterations", "1"), ("--slots", "20"), ("--eval-every", "1")]),
    ("experiment", &[("--quick", ""), ("--seeds", "1")]),
    ("qubo", &[("--sizes", "3x3"), ("--baselines", "2")]),
];

/// One README command: the `qmec` arguments after the binary's name.
#[derive(Debug, Clone, PartialEq)]
struct ReadmeCommand {
    line: String,
    args: Vec<String>,
}

/// The lines of every ```sh block, continuation lines joined and
/// comments dropped.
fn sh_lines(readme: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut in_sh, mut pending) = (false, String::new());
    for raw in readme.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = strip_comment(trimmed);
        match code.strip_suffix('\\') {
            Some(head) => pending.push_str(&format!("{} ", head.trim())),
            None => {
                pending.push_str(code.trim());
                if !pending.is_empty() {
                    lines.push(std::mem::take(&mut pending));
                }
            }
        }
    }
    lines
}

/// `code` without a trailing `# comment` (README commands quote no `#`).
fn strip_comment(code: &str) -> &str {
    if code.starts_with('#') {
        return "";
    }
    code.find(" #").map_or(code, |at| &code[..at]).trim_end()
}

/// The `qmec` arguments of a line that runs qmec, or `None` for other
/// commands (`./test.sh`, `cargo bench`, scripts).
fn qmec_args(line: &str) -> Option<Vec<String>> {
    let words = shlex::split(line)?;
    match words.first().map(String::as_str) {
        Some("qmec") => Some(words[1..].to_vec()),
        Some("cargo") if words.get(1).is_some_and(|w| w == "run") => {
            let dashes = words.iter().position(|w| w == "--")?;
            Some(words[dashes + 1..].to_vec())
        }
        _ => None,
    }
}

fn readme_commands(readme: &str) -> Vec<ReadmeCommand> {
    sh_lines(readme)
        .into_iter()
        .filter_map(|line| qmec_args(&line).map(|args| ReadmeCommand { line, args }))
        .collect()
}

/// `args` with the budget flags of its subcommand set.
fn with_budget(mut args: Vec<String>) -> Vec<String> {
    let Some((_, flags)) = BUDGETS.iter().find(|(name, _)| args.first().is_some_and(|a| a == name)) else {
        return args;
    };
    for (flag, value) in flags.iter() {
        let at = args.iter().position(|a| a == flag);
        match (at, value.is_empty()) {
            (Some(_), true) => {}
            (Some(at), false) if args.get(at + 1).is_some_and(|v| !v.starts_with("--")) => args[at + 1] = value.to_string(),
            (Some(at), false) => args.insert(at + 1, value.to_string()),
            (None, true) => args.push(flag.to_string()),
            (None, false) => args.extend([flag.to_string(), value.to_string()]),
        }
    }
    args
}

/// Copies every argument that names a file of the repository (an example
/// profile, a scenario) into `scratch` at the same relative path, so the
/// command finds it as it would in a fresh clone's root.
fn copy_repository_files(args: &[String], repository: &Path, scratch: &Path) {
    for arg in args {
        let source = repository.join(arg);
        if !arg.starts_with('-') && Path::new(arg).is_relative() && source.is_file() {
            let target = scratch.join(arg);
            std::fs::create_dir_all(target.parent().expect("a relative file has a parent")).expect("scratch folder");
            std::fs::copy(&source, &target).expect("copying a repository file");
        }
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ sits in the repository").to_path_buf()
}

#[test]
fn every_readme_command_runs_as_written() {
    let repository = repository();
    let readme = std::fs::read_to_string(repository.join("README.md")).expect("README.md");
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 20, "only {} qmec commands found in README.md's sh blocks", commands.len());
    let scratch = tempfile::tempdir().expect("scratch folder");
    for command in &commands {
        if let Some((_, reason)) = SKIPPED.iter().find(|(text, _)| command.line.contains(text)) {
            eprintln!("skipped `{}`: {reason}", command.line);
            continue;
        }
        let args = with_budget(command.args.clone());
        copy_repository_files(&args, &repository, scratch.path());
        let mut qmec = common::qmec();
        qmec.args(&args).current_dir(scratch.path());
        let output = common::run_bounded(qmec, Duration::from_secs(300));
        common::assert_success(&output, &format!("README command `{}` (run as `qmec {}`)", command.line, args.join(" ")));
    }
}

#[test]
fn commands_are_read_as_a_reader_would_type_them() {
    let readme = "text\n```sh\ncargo run --release -p qmec-cli -- simulate --slots 10000   # comment\n\
                  ./test.sh\nqmec train --epochs 1000 \\\n    --out m.json\n```\n```\nqmec not-sh\n```\n";
    let commands = readme_commands(readme);
    let args: Vec<Vec<String>> = commands.into_iter().map(|c| with_budget(c.args)).collect();
    let words = |text: &str| text.split(' ').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        args,
        vec![
            words("simulate --slots 20"),
            words("train --epochs 2 --out m.json --train-states 64 --val-states 16 --eval-every 1"),
        ]
    );
}
