//! Hand-written SVG for two charts plotters has no kind for: a parallel-coordinates view of
//! every ranked trial (one vertical axis per searched parameter, the objective last) and the
//! parameter-importance bars.

use std::fmt::Write;

use super::charts::{HIGHLIGHTED, MAX_DRAWN, colour_hex};
use super::ticks::label as tick_label;
use crate::sweep::importance::{Importance, Scale};

const WIDTH: f64 = 920.0;
const HEIGHT: f64 = 380.0;
const TOP: f64 = 46.0;
const BOTTOM: f64 = 34.0;
const SIDE: f64 = 70.0;

/// One trial's line: its cells (aligned with the columns), the objective, its position in
/// the leaderboard, and whether it won.
pub struct Line<'a> {
    /// The plan's column values.
    pub cells: &'a [String],
    /// The objective's value.
    pub value: f64,
    /// 0-based position in the leaderboard.
    pub position: usize,
    /// True for the winner.
    pub best: bool,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One axis: its scale and the range its positions span.
struct AxisMap {
    name: String,
    scale: Scale,
    lo: f64,
    hi: f64,
}

impl AxisMap {
    fn new(name: &str, cells: &[&str]) -> Self {
        let scale = Scale::of(cells);
        let xs: Vec<f64> = cells.iter().filter_map(|c| scale.position(c)).collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            name: name.to_string(),
            scale,
            lo,
            hi,
        }
    }

    /// The height of a cell on the axis, 0 (bottom) to 1 (top); a single value sits midway.
    fn unit(&self, cell: &str) -> Option<f64> {
        let x = self.scale.position(cell)?;
        Some(if self.hi > self.lo {
            (x - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        })
    }

    /// The labels at the bottom and top of the axis (every category for categories).
    fn ticks(&self) -> Vec<(f64, String)> {
        match &self.scale {
            Scale::Categories(c) => c
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let u = if c.len() > 1 {
                        i as f64 / (c.len() - 1) as f64
                    } else {
                        0.5
                    };
                    (u, name.clone())
                })
                .collect(),
            Scale::Log => vec![
                (0.0, tick_label(self.lo.exp())),
                (1.0, tick_label(self.hi.exp())),
            ],
            Scale::Linear => vec![(0.0, tick_label(self.lo)), (1.0, tick_label(self.hi))],
        }
    }
}

/// The parallel-coordinates chart of `lines` over `columns` and the objective `metric`.
pub fn chart(columns: &[String], metric: &str, lines: &[Line]) -> String {
    let mut axes: Vec<AxisMap> = columns
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let cells: Vec<&str> = lines.iter().map(|l| l.cells[c].as_str()).collect();
            AxisMap::new(name, &cells)
        })
        .collect();
    let values: Vec<String> = lines.iter().map(|l| l.value.to_string()).collect();
    let value_cells: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut objective = AxisMap::new(metric, &value_cells);
    objective.scale = Scale::Linear;
    axes.push(objective);
    let step = (WIDTH - 2.0 * SIDE) / (axes.len().max(2) - 1) as f64;
    let x = |a: usize| SIDE + a as f64 * step;
    let y = |u: f64| TOP + (1.0 - u) * (HEIGHT - TOP - BOTTOM);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // Faint lines first, the best on top.
    let mut order: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].position < MAX_DRAWN)
        .collect();
    order.sort_by_key(|&i| (lines[i].best, std::cmp::Reverse(lines[i].position)));
    for i in order {
        let l = &lines[i];
        let mut points = String::new();
        for (a, axis) in axes.iter().enumerate() {
            let cell = if a < columns.len() {
                l.cells[a].as_str()
            } else {
                values[i].as_str()
            };
            if let Some(u) = axis.unit(cell) {
                let _ = write!(points, "{:.1},{:.1} ", x(a), y(u));
            }
        }
        let (stroke, width, opacity) = if l.best {
            ("#000000".to_string(), 3.0, 1.0)
        } else if l.position < HIGHLIGHTED {
            (colour_hex(l.position, false), 1.5, 0.9)
        } else {
            ("#969696".to_string(), 1.0, 0.3)
        };
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{width}" stroke-opacity="{opacity}"/>"#,
            points.trim_end()
        );
    }
    for (a, axis) in axes.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#444"/>"##,
            x(a),
            y(1.0),
            y(0.0)
        );
        // Names of neighbouring axes alternate between two rows, and a name wider than two
        // axes' spacing keeps its end (the full name shows on hover).
        let row = if step < 140.0 { (a % 2) as f64 } else { 0.0 };
        let fits = ((2.0 * step) / 7.5).max(6.0) as usize;
        let chars: Vec<char> = axis.name.chars().collect();
        let shown = if chars.len() > fits {
            let tail: String = chars[chars.len() - (fits - 1)..].iter().collect();
            format!("…{tail}")
        } else {
            axis.name.clone()
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold"><title>{}</title>{}</text>"#,
            x(a),
            TOP - 22.0 - 14.0 * row,
            escape(&axis.name),
            escape(&shown)
        );
        if matches!(axis.scale, Scale::Log) {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">log scale</text>"##,
                x(a),
                TOP - 8.0
            );
        }
        for (u, label) in axis.ticks() {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="start">{}</text>"#,
                x(a) + 4.0,
                y(u) + 4.0,
                escape(&label)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Horizontal bars of each parameter's share of the importance.
pub fn importance_bars(importances: &[Importance]) -> String {
    let row = 26.0;
    let label = 220.0;
    let bar = 560.0;
    let height = 16.0 + row * importances.len() as f64;
    let width = label + bar + 80.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="13">"#
    );
    for (i, imp) in importances.iter().enumerate() {
        let y = 8.0 + i as f64 * row;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            label - 8.0,
            y + 14.0,
            escape(&imp.column)
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{label}" y="{y:.1}" width="{:.1}" height="18" fill="#4a7fb5"/>"##,
            (bar * imp.share).max(1.0)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{:.0} %</text>"#,
            label + bar * imp.share + 6.0,
            y + 14.0,
            imp.share * 100.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trial_is_a_line_across_every_axis() {
        let cells: Vec<Vec<String>> = (0..12)
            .map(|i| {
                vec![
                    format!("{}", 0.001 * 3f64.powi(i)),
                    ["a", "b"][i as usize % 2].into(),
                ]
            })
            .collect();
        let lines: Vec<Line> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| Line {
                cells: c,
                value: 90.0 + i as f64,
                position: i,
                best: i == 0,
            })
            .collect();
        let svg = chart(&["lr".into(), "kind".into()], "val_acc", &lines);
        assert_eq!(svg.matches("<polyline").count(), 12);
        assert!(svg.contains("log scale"), "lr spans a factor of 3^11");
        assert!(svg.contains(">val_acc<") && svg.contains(">kind<"));
        let bars = importance_bars(&[
            Importance {
                column: "lr".into(),
                share: 0.8,
            },
            Importance {
                column: "kind".into(),
                share: 0.2,
            },
        ]);
        assert!(bars.contains("80 %") && bars.contains("20 %"));
    }
}
