//! SVG charts of a sweep (plotters' SVG backend): learning curves and parameter scatters.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::TrialCurves;
use crate::trial::EpochMetrics;

/// Chart size in pixels.
const SIZE: (u32, u32) = (640, 380);

/// Colour of a trial's line: the palette, by position in the leaderboard.
fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Colour used to highlight the best trial.
pub const BEST: RGBColor = RGBColor(0, 0, 0);

/// How the accuracy chart shows test accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccuracyAxis {
    /// Test accuracy in percent, linear.
    Linear,
    /// Test error (100 − accuracy) on a log axis, which separates 98.5 % from 99.4 %.
    LogError,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw chart: {e}")
}

/// Test accuracy (or error) per epoch, one line per trial, the best one thick and black.
pub fn accuracy(trials: &[TrialCurves], axis: AccuracyAxis) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_accuracy(&root, trials, axis)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Training loss per epoch (log axis), one line per trial.
pub fn loss(trials: &[TrialCurves]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_loss(&root, trials)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The learning curves side by side (test error and train loss) as one SVG, for READMEs.
pub fn curves(trials: &[TrialCurves]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 * 2, SIZE.1)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let panels = root.split_evenly((1, 2));
        draw_accuracy(&panels[0], trials, AccuracyAxis::LogError)?;
        draw_loss(&panels[1], trials)?;
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

/// Trials with data, the best last so that it is drawn on top.
fn drawing_order(trials: &[TrialCurves]) -> Vec<(usize, &TrialCurves)> {
    let mut order: Vec<(usize, &TrialCurves)> = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.metrics.is_empty())
        .collect();
    order.sort_by_key(|(_, t)| t.best);
    order
}

fn style(i: usize, t: &TrialCurves) -> ShapeStyle {
    if t.best {
        BEST.stroke_width(3)
    } else if t.pruned {
        colour(i).mix(0.3).stroke_width(1)
    } else {
        colour(i).stroke_width(1)
    }
}

/// What one line chart of per-epoch values shows.
struct LineChart<'a> {
    caption: &'a str,
    y_desc: &'a str,
    /// The plotted value of an epoch (already transformed, e.g. ln), None to skip it.
    value: &'a dyn Fn(&EpochMetrics) -> Option<f64>,
    /// Turns a plotted value back into the label shown (identity for linear axes).
    label: &'a dyn Fn(f64) -> String,
    /// The y range from the smallest and largest plotted value.
    range: &'a dyn Fn(f64, f64) -> std::ops::Range<f64>,
    legend_at: SeriesLabelPosition,
}

fn draw_accuracy(area: &Area, trials: &[TrialCurves], axis: AccuracyAxis) -> anyhow::Result<()> {
    match axis {
        AccuracyAxis::Linear => draw_lines(
            area,
            trials,
            &LineChart {
                caption: "test accuracy (%)",
                y_desc: "test accuracy %",
                value: &|m| m.get("test_acc").filter(|v| v.is_finite()),
                label: &|y| format!("{y:.1}"),
                // At most 5 points below the best, so that early epochs do not flatten the rest.
                range: &|lo, hi| {
                    let lo = lo.max(hi - 5.0).floor();
                    lo..hi.min(100.0).ceil().max(lo + 0.5)
                },
                legend_at: SeriesLabelPosition::LowerRight,
            },
        ),
        // ln(error) on a linear axis with labels mapped back: plotters' own log axis labels
        // only powers of ten, which a 0.5-2 % range does not contain.
        AccuracyAxis::LogError => draw_lines(
            area,
            trials,
            &LineChart {
                caption: "test error (%, log scale)",
                y_desc: "test error %",
                value: &|m| {
                    m.get("test_acc")
                        .map(|a| (100.0 - a).max(0.01).ln())
                        .filter(|v| v.is_finite())
                },
                label: &|y| significant(y.exp()),
                range: &log_range,
                legend_at: SeriesLabelPosition::UpperRight,
            },
        ),
    }
}

fn draw_loss(area: &Area, trials: &[TrialCurves]) -> anyhow::Result<()> {
    draw_lines(
        area,
        trials,
        &LineChart {
            caption: "training loss (log scale)",
            y_desc: "train loss",
            value: &|m| {
                m.get("train_loss")
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .map(f64::ln)
            },
            label: &|y| significant(y.exp()),
            range: &log_range,
            legend_at: SeriesLabelPosition::UpperRight,
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
    let mut chart = ChartBuilder::on(area)
        .caption(chart_spec.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(1f64..max_epoch(trials), (chart_spec.range)(lo, hi))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .y_labels(8)
        .y_label_formatter(&|y| (chart_spec.label)(*y))
        .x_desc("epoch")
        .y_desc(chart_spec.y_desc)
        .draw()
        .map_err(plot_error)?;
    let legend = trials.iter().filter(|t| !t.metrics.is_empty()).count() <= 10;
    for (i, t) in drawing_order(trials) {
        let st = style(i, t);
        let series = chart
            .draw_series(LineSeries::new(points(t), st))
            .map_err(plot_error)?;
        if legend {
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

/// A range of ln-values [lo, hi] with a little room (never empty).
fn log_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * 0.05).max(0.02);
    (lo - pad)..(hi + pad)
}

/// About two significant digits: 0.0012, 0.45, 1.3, 27.5.
fn significant(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        let decimals = (1 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// One searched parameter against the metric: a scatter, log x when the values span more than
/// a factor of 20; non-numeric values are spread over equally spaced categories.
/// `values` holds (parameter value, metric, leaderboard row, is best).
pub fn scatter(
    column: &str,
    values: &[(String, f64, usize, bool)],
    metric: &str,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (420, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let ys: Vec<f64> = values
            .iter()
            .map(|v| v.1)
            .filter(|y| y.is_finite())
            .collect();
        let (lo, hi) = bounds(&ys).unwrap_or((0.0, 1.0));
        let pad = ((hi - lo) * 0.1).max(0.05);
        let y_range = (lo - pad)..(hi + pad);
        let numbers: Option<Vec<f64>> = values.iter().map(|v| v.0.parse::<f64>().ok()).collect();
        let dot = |x: f64, v: &(String, f64, usize, bool)| {
            let style = if v.3 {
                BEST.filled()
            } else {
                colour(v.2).filled()
            };
            Circle::new((x, v.1), if v.3 { 6 } else { 4 }, style)
        };
        match numbers {
            Some(xs) if !xs.is_empty() => {
                let (xlo, xhi) = bounds(&xs).unwrap_or((0.0, 1.0));
                // Values spanning more than a factor of 20 are drawn at ln(x), labelled with x.
                let log = xlo > 0.0 && xhi / xlo > 20.0;
                let to_axis = |x: f64| if log { x.ln() } else { x };
                let (alo, ahi) = (to_axis(xlo), to_axis(xhi));
                let pad = if ahi > alo {
                    (ahi - alo) * 0.08
                } else {
                    alo.abs().max(1.0) * 0.5
                };
                let mut chart = ChartBuilder::on(&root)
                    .caption(column, ("sans-serif", 16))
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(50)
                    .build_cartesian_2d(alo - pad..ahi + pad, y_range)
                    .map_err(plot_error)?;
                chart
                    .configure_mesh()
                    .light_line_style(WHITE.mix(0.0))
                    .x_label_formatter(&|x| {
                        if log {
                            significant(x.exp())
                        } else {
                            format!("{x}")
                        }
                    })
                    .x_desc(column)
                    .y_desc(metric)
                    .draw()
                    .map_err(plot_error)?;
                chart
                    .draw_series(xs.iter().zip(values).map(|(&x, v)| dot(to_axis(x), v)))
                    .map_err(plot_error)?;
            }
            _ => {
                let mut categories: Vec<&str> = Vec::new();
                for v in values {
                    if !categories.contains(&v.0.as_str()) {
                        categories.push(&v.0);
                    }
                }
                let n = categories.len();
                let mut chart = ChartBuilder::on(&root)
                    .caption(column, ("sans-serif", 16))
                    .margin(10)
                    .x_label_area_size(40)
                    .y_label_area_size(50)
                    .build_cartesian_2d(-0.5f64..n as f64 - 0.5, y_range)
                    .map_err(plot_error)?;
                let labels = categories.clone();
                chart
                    .configure_mesh()
                    .light_line_style(WHITE.mix(0.0))
                    .x_labels(n)
                    .x_label_formatter(&move |x| {
                        let i = x.round();
                        if (x - i).abs() < 1e-6 && i >= 0.0 {
                            labels
                                .get(i as usize)
                                .map(|s| s.to_string())
                                .unwrap_or_default()
                        } else {
                            String::new()
                        }
                    })
                    .y_desc(metric)
                    .draw()
                    .map_err(plot_error)?;
                chart
                    .draw_series(values.iter().map(|v| {
                        let x = categories.iter().position(|c| *c == v.0).unwrap_or(0) as f64;
                        dot(x, v)
                    }))
                    .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The hex colour of a trial's line, for the leaderboard's legend swatches.
pub fn colour_hex(i: usize, best: bool) -> String {
    let c = if best { BEST } else { colour(i) };
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
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
        for trials in &cases {
            for axis in [AccuracyAxis::Linear, AccuracyAxis::LogError] {
                assert!(accuracy(trials, axis).unwrap().starts_with("<svg"));
            }
            assert!(loss(trials).unwrap().starts_with("<svg"));
            assert!(curves(trials).unwrap().starts_with("<svg"));
        }
        let empty = accuracy(&cases[0], AccuracyAxis::LogError).unwrap();
        assert!(empty.contains("no epoch has finished yet"));
    }

    #[test]
    fn scatters_draw_numbers_log_ranges_categories_and_single_values() {
        let v = |x: &str, y: f64, best: bool| (x.to_string(), y, 0, best);
        for values in [
            vec![v("0.001", 98.0, false), v("0.1", 98.5, true)],
            vec![v("0.5", 98.0, true)],
            vec![v("MLP", 98.4, false), v("+BN", 98.7, true)],
            vec![v("inf", 98.0, true)],
        ] {
            assert!(
                scatter("k", &values, "test_acc")
                    .unwrap()
                    .starts_with("<svg")
            );
        }
    }
}
