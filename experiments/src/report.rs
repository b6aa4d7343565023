//! The claim-by-claim report: each experiment returns a [`Section`] (text,
//! tables, figures, claims); the report lists every claim of the two papers
//! beside qmec's measurement with a verdict.

use crate::ExperimentError;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    NotTestable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::NotTestable => "not testable",
        }
    }
}

/// One quantitative claim of a paper and what qmec measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// Which paper: "Sci. Rep. 2025" or "IoT J. 2026".
    pub source: &'static str,
    pub claim: String,
    pub measured: String,
    pub verdict: Verdict,
    /// Why this verdict: the comparison made, or why it cannot be made.
    pub why: String,
}

/// What one experiment contributes to the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub name: String,
    pub title: String,
    /// Markdown: what was run and the tables.
    pub body: String,
    pub files: Vec<PathBuf>,
    pub claims: Vec<Claim>,
}

impl Section {
    pub fn new(name: &str, title: &str) -> Section {
        Section { name: name.into(), title: title.into(), ..Section::default() }
    }

    /// Appends a markdown table.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.body, "\n| {} |", headers.join(" | "));
        let _ = writeln!(self.body, "|{}", " --- |".repeat(headers.len()));
        for row in rows {
            let _ = writeln!(self.body, "| {} |", row.join(" | "));
        }
        self.body.push('\n');
    }
}

/// Writes rows as CSV with a header line.
pub fn write_csv(path: &Path, headers: &[&str], rows: &[Vec<String>]) -> Result<PathBuf, ExperimentError> {
    let mut writer = csv::Writer::from_path(path).map_err(|e| ExperimentError::io(path, e))?;
    writer.write_record(headers).map_err(|e| ExperimentError::io(path, e))?;
    for row in rows {
        writer.write_record(row).map_err(|e| ExperimentError::io(path, e))?;
    }
    writer.flush().map_err(|e| ExperimentError::io(path, e))?;
    Ok(path.to_path_buf())
}

/// What quick mode's figures and verdicts are worth, said wherever they
/// are shown (terminal, report, figure titles).
pub const QUICK_MODE_NOTE: &str = "quick mode: indicative only";

/// A verdict as shown to a reader: in quick mode, marked indicative.
pub fn shown_verdict(verdict: Verdict, quick: bool) -> String {
    if quick { format!("{} ({QUICK_MODE_NOTE})", verdict.as_str()) } else { verdict.as_str().to_string() }
}

/// Writes `report.md` (and `claims.json`) into `out`.
pub fn write_report(out: &Path, sections: &[Section], command: &str, quick: bool) -> Result<PathBuf, ExperimentError> {
    let mut md = String::new();
    let _ = writeln!(md, "# qmec experiment report\n");
    if quick {
        let _ = writeln!(
            md,
            "**Quick mode (`--quick`): short runs, few seeds and small training budgets. Every figure and \
             verdict below is indicative only; run without `--quick` to test the papers' claims.**\n"
        );
    }
    let _ = writeln!(
        md,
        "Produced by `{command}`. Every number below was measured by this run; nothing is tuned to meet a \
         paper's figure. Intervals are 95 % Student-t intervals over seeds, shown only where at least {} \
         seeds ran (fewer: the mean alone, marked so).\n",
        crate::stats::MIN_SAMPLES_FOR_INTERVAL
    );
    let claims: Vec<&Claim> = sections.iter().flat_map(|s| &s.claims).collect();
    let _ = writeln!(md, "## Claims\n");
    let _ = writeln!(md, "| paper | claim | qmec measured | verdict | why |");
    let _ = writeln!(md, "| --- | --- | --- | --- | --- |");
    for c in &claims {
        let _ = writeln!(md, "| {} | {} | {} | **{}** | {} |", c.source, c.claim, c.measured, shown_verdict(c.verdict, quick), c.why);
    }
    for section in sections {
        let _ = writeln!(md, "\n## {} (`{}`)\n", section.title, section.name);
        md.push_str(&section.body);
        for file in section.files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")) {
            let relative = file.strip_prefix(out).unwrap_or(file);
            let _ = writeln!(md, "\n![{}]({})", relative.display(), relative.display());
        }
    }
    let path = out.join("report.md");
    std::fs::write(&path, md).map_err(|e| ExperimentError::io(&path, e))?;
    let json_path = out.join("claims.json");
    let json = serde_json::to_string_pretty(&claims).map_err(|e| ExperimentError::io(&json_path, e))?;
    std::fs::write(&json_path, json).map_err(|e| ExperimentError::io(&json_path, e))?;
    Ok(path)
}
