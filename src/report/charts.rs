//! `curves.svg`: a static picture of a sweep's learning curves (plotters' SVG backend), for
//! READMEs and papers; the report's interactive charts are in `report.js`.
//!
//! Charts stay legible with hundreds of trials: the best few are drawn in colour (the
//! winner thick and black) with a legend, the rest as faint grey lines, and beyond
//! [`MAX_DRAWN`] trials the lowest ranked are left out.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::TrialCurves;
use super::ticks::{Scale, TickedAxis};
use crate::trial::EpochMetrics;

/// Chart size in pixels.
const SIZE: (u32, u32) = (640, 380);

/// Trials drawn in colour, with a legend entry: the best of the leaderboard.
pub const HIGHLIGHTED: usize = 8;
/// Trials drawn at most (the best by the leaderboard); the rest are left out of the curves.
pub const MAX_DRAWN: usize = 300;

/// Colour of a trial's line: the palette, by position in the leaderboard.
fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Colour used to highlight the best trial.
pub const BEST: RGBColor = RGBColor(0, 0, 0);
/// Colour of the trials below the highlighted ones.
const FAINT: RGBColor = RGBColor(150, 150, 150);

/// How a metric's chart shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricAxis {
    /// The value, linearly.
    Linear,
    /// An accuracy in percent as the error (100 − accuracy) on a log axis, which separates
    /// 98.5 % from 99.4 %.
    LogError,
    /// The value on a log axis (losses).
    Log,
}

impl MetricAxis {
    /// The axis that suits `metric`: log error for accuracies, log for losses.
    pub fn for_metric(metric: &str) -> Self {
        if metric.contains("acc") {
            MetricAxis::LogError
        } else if metric.contains("loss") || metric.contains("err") {
            MetricAxis::Log
        } else {
            MetricAxis::Linear
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw chart: {e}")
}

/// `metric` per epoch, one line per trial (one panel of [`curves`]).
#[cfg(test)]
fn metric(trials: &[TrialCurves], metric: &str, axis: MetricAxis) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_metric(&root, trials, metric, axis)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The learning curves side by side (the objective and the training loss) as one SVG, for
/// READMEs.
pub fn curves(trials: &[TrialCurves], objective: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 * 2, SIZE.1)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let panels = root.split_evenly((1, 2));
        draw_metric(
            &panels[0],
            trials,
            objective,
            MetricAxis::for_metric(objective),
        )?;
        draw_metric(&panels[1], trials, "train_loss", MetricAxis::Log)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn max_epoch(trials: &[TrialCurves]) -> f64 {
    trials
        .iter()
        .flat_map(|t| t.metrics.last().map(|m| m.epoch))
        .max()
        .unwrap_or(1)
        .max(2) as f64
}

/// The trials drawn (the best [`MAX_DRAWN`], with data), faint ones first and the best last,
/// so that the best are drawn on top.
fn drawing_order(trials: &[TrialCurves]) -> Vec<(usize, &TrialCurves)> {
    let mut order: Vec<(usize, &TrialCurves)> = trials
        .iter()
        .enumerate()
        .take(MAX_DRAWN)
        .filter(|(_, t)| !t.metrics.is_empty())
        .collect();
    order.sort_by_key(|(i, t)| (t.best, std::cmp::Reverse(*i)));
    order
}

fn highlighted(i: usize, t: &TrialCurves) -> bool {
    t.best || (i < HIGHLIGHTED && !t.pruned)
}

fn style(i: usize, t: &TrialCurves) -> ShapeStyle {
    if t.best {
        BEST.stroke_width(3)
    } else if highlighted(i, t) {
        colour(i).stroke_width(1)
    } else {
        FAINT.mix(0.35).stroke_width(1)
    }
}

/// What one line chart of per-epoch values shows.
struct LineChart<'a> {
    caption: &'a str,
    y_desc: &'a str,
    /// The plotted value of an epoch (the error for a log-error axis), None to skip it.
    value: &'a dyn Fn(&EpochMetrics) -> Option<f64>,
    /// How the y axis maps values.
    scale: Scale,
    legend_at: SeriesLabelPosition,
}

fn draw_metric(
    area: &Area,
    trials: &[TrialCurves],
    metric: &str,
    axis: MetricAxis,
) -> anyhow::Result<()> {
    let caption = match axis {
        MetricAxis::LogError => format!("{} error (%, log scale)", metric.trim_end_matches("_acc")),
        MetricAxis::Log => format!("{metric} (log scale)"),
        MetricAxis::Linear => metric.to_string(),
    };
    let value = |m: &EpochMetrics| -> Option<f64> {
        let v = m.get(metric).filter(|v| v.is_finite())?;
        match axis {
            MetricAxis::Linear => Some(v),
            MetricAxis::LogError => Some((100.0 - v).max(0.01)),
            MetricAxis::Log => Some(v).filter(|v| *v > 0.0),
        }
    };
    let y_desc = match axis {
        MetricAxis::LogError => format!("{} error (%)", metric.trim_end_matches("_acc")),
        _ => metric.to_string(),
    };
    draw_lines(
        area,
        trials,
        &LineChart {
            caption: &caption,
            y_desc: &y_desc,
            value: &value,
            scale: if axis == MetricAxis::Linear {
                Scale::Linear
            } else {
                Scale::Log
            },
            legend_at: if axis == MetricAxis::Linear && metric.contains("acc") {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            },
        },
    )
}

/// One line per trial of a per-epoch value, the best thick and black, a legend for up to 10.
fn draw_lines(area: &Area, trials: &[TrialCurves], chart_spec: &LineChart) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(plot_error)?;
    let points = |t: &TrialCurves| -> Vec<(f64, f64)> {
        t.metrics
            .iter()
            .filter_map(|m| (chart_spec.value)(m).map(|y| (m.epoch as f64, y)))
            .collect()
    };
    let ys: Vec<f64> = trials
        .iter()
        .flat_map(|t| points(t).into_iter().map(|p| p.1))
        .collect();
    let Some((lo, hi)) = bounds(&ys) else {
        return no_data(
            area,
            &format!("{}: no epoch has finished yet", chart_spec.caption),
        );
    };
    let log = chart_spec.scale == Scale::Log;
    let to_axis = |v: f64| if log { v.ln() } else { v };
    let x_axis = TickedAxis::for_values(1.0, max_epoch(trials), Scale::Integer, 0.0);
    let y_axis = TickedAxis::for_values(lo, hi, chart_spec.scale, 0.05);
    let (x_labels, y_labels) = (x_axis.clone(), y_axis.clone());
    let mut chart = ChartBuilder::on(area)
        .caption(chart_spec.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(x_axis, y_axis)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| x_labels.label_of(*x))
        .y_label_formatter(&|y| y_labels.label_of(*y))
        .x_desc("epoch")
        .y_desc(chart_spec.y_desc)
        .draw()
        .map_err(plot_error)?;
    let points = |t: &TrialCurves| -> Vec<(f64, f64)> {
        points(t)
            .into_iter()
            .map(|(x, y)| (x, to_axis(y)))
            .collect()
    };
    let mut legend = false;
    for (i, t) in drawing_order(trials) {
        let st = style(i, t);
        let series = chart
            .draw_series(LineSeries::new(points(t), st))
            .map_err(plot_error)?;
        if highlighted(i, t) {
            legend = true;
            series
                .label(t.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], st));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(chart_spec.legend_at.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// One trial on [`pareto`]'s scatter: its first two objective values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParetoDot {
    /// The first objective's value (x).
    pub x: f64,
    /// The second objective's value (y).
    pub y: f64,
    /// On the feasible front.
    pub front: bool,
    /// Breaks a constraint.
    pub infeasible: bool,
    /// The trial `best/` holds.
    pub best: bool,
}

/// The trade-off between the first two objectives as one SVG, for READMEs: the front in
/// blue (joined, in the order of the first objective), dominated trials grey, infeasible ones
/// as red crosses, `best/` as a black ring. A second objective whose values span more than 20x
/// (all positive) is drawn on a log axis.
pub fn pareto(
    dots: &[ParetoDot],
    x_name: &str,
    y_name: &str,
    caption: &str,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let xs: Vec<f64> = dots.iter().map(|d| d.x).collect();
        let ys: Vec<f64> = dots.iter().map(|d| d.y).collect();
        let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (bounds(&xs), bounds(&ys)) else {
            no_data(&root, "no trial has a value for both objectives yet")?;
            root.present().map_err(plot_error)?;
            drop(root);
            return Ok(svg);
        };
        let y_scale = if y_lo > 0.0 && y_hi / y_lo > 20.0 {
            Scale::Log
        } else {
            Scale::Linear
        };
        let to_y = |v: f64| if y_scale == Scale::Log { v.ln() } else { v };
        let x_axis = TickedAxis::for_values(x_lo, x_hi, Scale::Linear, 0.05);
        let y_axis = TickedAxis::for_values(y_lo, y_hi, y_scale, 0.05);
        let (x_labels, y_labels) = (x_axis.clone(), y_axis.clone());
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(x_axis, y_axis)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .x_label_formatter(&|x| x_labels.label_of(*x))
            .y_label_formatter(&|y| y_labels.label_of(*y))
            .x_desc(x_name)
            .y_desc(y_name)
            .draw()
            .map_err(plot_error)?;
        let at = |d: &ParetoDot| (d.x, to_y(d.y));
        let blue = RGBColor(31, 119, 180);
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(
                dots.iter()
                    .filter(|d| !d.front && !d.infeasible)
                    .map(|d| Circle::new(at(d), 3, FAINT.filled())),
            )
            .map_err(plot_error)?
            .label("dominated")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, FAINT.filled()));
        if dots.iter().any(|d| d.infeasible) {
            chart
                .draw_series(
                    dots.iter()
                        .filter(|d| d.infeasible)
                        .map(|d| Cross::new(at(d), 4, red.stroke_width(2))),
                )
                .map_err(plot_error)?
                .label("infeasible")
                .legend(move |(x, y)| Cross::new((x + 8, y), 4, red.stroke_width(2)));
        }
        let mut front: Vec<(f64, f64)> = dots.iter().filter(|d| d.front).map(at).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(front.clone(), blue.stroke_width(1)))
            .map_err(plot_error)?;
        chart
            .draw_series(front.iter().map(|&p| Circle::new(p, 4, blue.filled())))
            .map_err(plot_error)?
            .label("front")
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, blue.filled()));
        chart
            .draw_series(
                dots.iter()
                    .filter(|d| d.best)
                    .map(|d| Circle::new(at(d), 8, BEST.stroke_width(2))),
            )
            .map_err(plot_error)?
            .label("best/")
            .legend(|(x, y)| Circle::new((x + 8, y), 6, BEST.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The smallest and largest value, or None when there is none.
fn bounds(ys: &[f64]) -> Option<(f64, f64)> {
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// An empty panel saying why it is empty.
fn no_data(area: &Area, message: &str) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(plot_error)?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        ("sans-serif", 16).into_font().color(&BLACK.mix(0.6)).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        ),
    ))
    .map_err(plot_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::Metrics;

    fn trial(name: &str, accs: &[f64], best: bool) -> TrialCurves {
        TrialCurves {
            name: name.into(),
            best,
            pruned: false,
            metrics: accs
                .iter()
                .enumerate()
                .map(|(i, &a)| EpochMetrics {
                    epoch: i + 1,
                    metrics: Metrics::new()
                        .with("train_loss", 0.5 / (i + 1) as f64)
                        .with("test_acc", a),
                })
                .collect(),
        }
    }

    #[test]
    fn charts_draw_for_empty_single_point_and_normal_sweeps() {
        let cases = [
            vec![],
            vec![trial("a", &[], false)],
            vec![trial("a", &[97.0], true)],
            vec![
                trial("a", &[97.0, 98.0, 98.5], true),
                trial("b", &[96.0, 97.5, 100.0], false),
            ],
        ];
        // Each chart is a whole SVG document; with no finished epoch it says so, and two trials
        // of three epochs draw a curve each.
        let charts = |trials: &[TrialCurves]| {
            [
                metric(trials, "test_acc", MetricAxis::Linear).unwrap(),
                metric(trials, "test_acc", MetricAxis::LogError).unwrap(),
                metric(trials, "train_loss", MetricAxis::Log).unwrap(),
                curves(trials, "test_acc").unwrap(),
            ]
        };
        for trials in &cases {
            for svg in charts(trials) {
                assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            }
        }
        for svg in charts(&cases[1]).iter().take(3) {
            assert!(svg.contains("no epoch has finished yet"), "{svg}");
        }
        // The trials' curves are the polylines through all three epochs.
        let curves_of = |svg: &str| {
            svg.split("<polyline")
                .skip(1)
                .filter(|p| {
                    let points = p
                        .split("points=\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next());
                    points.is_some_and(|pts| pts.split_whitespace().count() == 3)
                })
                .count()
        };
        for svg in charts(&cases[3]).iter().take(3) {
            assert_eq!(curves_of(svg), 2, "{svg}");
        }
        let two = metric(&cases[3], "test_acc", MetricAxis::Linear).unwrap();
        assert!(two.contains("\na\n") && two.contains("\nb\n"), "{two}");
        let empty = metric(&cases[0], "test_acc", MetricAxis::LogError).unwrap();
        assert!(empty.contains("no epoch has finished yet"));
    }

    #[test]
    fn the_pareto_chart_marks_front_infeasible_and_best_and_logs_a_wide_second_axis() {
        let dot = |x: f64, y: f64, front: bool, infeasible: bool, best: bool| ParetoDot {
            x,
            y,
            front,
            infeasible,
            best,
        };
        let dots = [
            dot(99.4, 300.0, true, false, false),
            dot(99.3, 120.0, true, false, true),
            dot(98.0, 10.0, true, false, false),
            dot(97.0, 200.0, false, false, false),
            dot(99.5, 900.0, false, true, false),
        ];
        let svg = pareto(&dots, "val_acc (max)", "train_seconds (min)", "5 trials").unwrap();
        for label in [
            "front",
            "dominated",
            "infeasible",
            "best/",
            "val_acc (max)",
            "5 trials",
        ] {
            assert!(svg.contains(label), "{label}");
        }
        // 10 to 900 s spans 90x: a log axis, ticked at powers of ten.
        assert!(svg.contains("\n100\n"), "log ticks");
        let feasible = pareto(&dots[..4], "a", "b", "c").unwrap();
        assert!(
            !feasible.contains("infeasible"),
            "no legend entry without such trials"
        );
        let empty = pareto(&[], "a", "b", "c").unwrap();
        assert!(empty.contains("no trial has a value"));
    }

    #[test]
    fn hundreds_of_trials_draw_the_best_in_colour_and_leave_out_the_tail() {
        let many: Vec<TrialCurves> = (0..MAX_DRAWN + 50)
            .map(|i| trial(&format!("t{i}"), &[90.0, 95.0 - i as f64 * 0.001], i == 0))
            .collect();
        let lines = |n: usize| {
            metric(&many[..n], "test_acc", MetricAxis::LogError)
                .unwrap()
                .matches("<polyline")
                .count()
        };
        assert_eq!(
            lines(MAX_DRAWN + 50),
            lines(MAX_DRAWN),
            "the tail is left out"
        );
        assert_eq!(
            lines(MAX_DRAWN) - lines(MAX_DRAWN - 1),
            1,
            "up to it, one line a trial"
        );
        let svg = metric(&many, "test_acc", MetricAxis::LogError).unwrap();
        assert!(
            svg.contains("\nt7\n") && !svg.contains("\nt8\n"),
            "a legend for the best only"
        );
    }
}
