//! Everything `sweep` writes to disk: run directories, and for sweeps the journal (with the
//! record it replays into), the leaderboard and the best trial. The one place that writes
//! sweep files.

pub mod atomic;
pub mod journal;
pub mod jsonl;
pub mod leaderboard;
pub mod lock;
pub mod record;
pub mod run_dir;
pub mod sweep_dir;

/// Renders rows as an aligned plain-text table with a header line.
pub fn text_table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .chain(std::iter::once(&header[c]))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header);
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}
