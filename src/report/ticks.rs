//! Where an axis puts its ticks, and how it writes them: as a person writes numbers. Log axes
//! tick at 1 and 3 (or 1, 2 and 5) times powers of ten (`1e-4 3e-4 0.001 0.003 0.01`),
//! linear axes at round steps, whole-number axes (epochs) at whole numbers.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;

/// How an axis maps its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal steps.
    Linear,
    /// Equal ratios (values > 0).
    Log,
    /// Whole numbers (epochs, integer parameters).
    Integer,
}

/// At most this many ticks on an axis.
const MAX_TICKS: usize = 8;

/// The tick values for an axis over [lo, hi].
pub fn ticks(lo: f64, hi: f64, scale: Scale) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return Vec::new();
    }
    match scale {
        Scale::Log if lo > 0.0 => log_ticks(lo, hi),
        Scale::Integer => {
            let (lo, hi) = (lo.ceil(), hi.floor());
            if hi < lo {
                return Vec::new();
            }
            let step = nice_step((hi - lo) / (MAX_TICKS - 1) as f64)
                .max(1.0)
                .round();
            steps(lo, hi, step)
        }
        _ => {
            if hi == lo {
                return vec![lo];
            }
            steps(lo, hi, nice_step((hi - lo) / (MAX_TICKS - 1) as f64))
        }
    }
}

/// The multiples of `step` in [lo, hi].
fn steps(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| clean(k as f64 * step)).collect()
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Log ticks: 1 and 3 times each power of ten; when that gives too many, one per decade (or
/// per 2, 3, 5 decades); when it gives fewer than three, 1, 2 and 5 per decade; and within
/// less than a decade, round linear steps.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |mantissas: &[f64], every: i32| -> Vec<f64> {
        (first..=last)
            .filter(|k| k.rem_euclid(every) == 0)
            .flat_map(|k| mantissas.iter().map(move |m| clean(m * 10f64.powi(k))))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let one_three = within(&[1.0, 3.0], 1);
    if one_three.len() > MAX_TICKS {
        return [1, 2, 3, 5, 10]
            .into_iter()
            .map(|every| within(&[1.0], every))
            .find(|t| t.len() <= MAX_TICKS)
            .unwrap_or_default();
    }
    if one_three.len() >= 3 {
        return one_three;
    }
    let one_two_five = within(&[1.0, 2.0, 5.0], 1);
    if one_two_five.len() >= 3 {
        return one_two_five;
    }
    let linear = ticks(lo, hi, Scale::Linear);
    if linear.len() >= 2 {
        linear
    } else {
        one_two_five
    }
}

/// `v` without floating-point noise (0.30000000000000004 -> 0.3).
fn clean(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let digits = 12 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits.clamp(-300, 300));
    (v * scale).round() / scale
}

/// The labels of a row of ticks: each as [`label`] writes it, with more decimals where two
/// would otherwise read the same (98.05 and 98.1, not 98.1 twice).
pub fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let plain: Vec<String> = ticks.iter().map(|&v| label(v)).collect();
    let distinct = |l: &[String]| l.windows(2).all(|w| w[0] != w[1]);
    if distinct(&plain) {
        return plain;
    }
    (1..=10)
        .map(|decimals| {
            ticks
                .iter()
                .map(|v| {
                    let text = format!("{v:.decimals$}");
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                })
                .collect::<Vec<String>>()
        })
        .find(|l| distinct(l))
        .unwrap_or(plain)
}

/// A tick label as a person writes it: at most three significant digits, no trailing zeros,
/// `1e-4` and `3e-4` below 0.001, `2e+6` from a million.
pub fn label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let decimals = (2 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A plotters axis over [lo, hi] (in drawing units: ln of the value on a log axis) whose
/// ticks are the given ones rather than plotters' own.
#[derive(Clone)]
pub struct TickedAxis {
    range: RangedCoordf64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl TickedAxis {
    /// An axis over `range` (drawing units) ticked at `ticks` (drawing units).
    /// `labels` are the ticks' labels, in order.
    pub fn new(range: Range<f64>, ticks: Vec<f64>, labels: Vec<String>) -> Self {
        let (lo, hi) = (range.start, range.end);
        let (ticks, labels) = ticks
            .into_iter()
            .zip(labels)
            .filter(|(t, _)| *t >= lo && *t <= hi)
            .unzip();
        Self {
            range: range.into(),
            ticks,
            labels,
        }
    }

    /// The label of the tick at `axis_value` (drawing units).
    pub fn label_of(&self, axis_value: f64) -> String {
        let span = (self.range.range().end - self.range.range().start)
            .abs()
            .max(1e-12);
        self.ticks
            .iter()
            .position(|t| (t - axis_value).abs() <= span * 1e-9)
            .map(|i| self.labels[i].clone())
            .unwrap_or_default()
    }

    /// An axis of values over [lo, hi] with `scale`, padded by `pad` of its span: for a log
    /// axis, drawing units are ln(value).
    pub fn for_values(lo: f64, hi: f64, scale: Scale, pad: f64) -> Self {
        let to_axis = |v: f64| if scale == Scale::Log { v.ln() } else { v };
        let (alo, ahi) = (to_axis(lo), to_axis(hi));
        let margin = if ahi > alo {
            (ahi - alo) * pad
        } else {
            alo.abs().max(1.0) * 0.5
        };
        let (vlo, vhi) = (alo - margin, ahi + margin);
        let from_axis = |a: f64| if scale == Scale::Log { a.exp() } else { a };
        let values = ticks(from_axis(vlo), from_axis(vhi), scale);
        let labels = tick_labels(&values);
        Self::new(vlo..vhi, values.into_iter().map(to_axis).collect(), labels)
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.range()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, scale: Scale) -> Vec<String> {
        tick_labels(&ticks(lo, hi, scale))
    }

    #[test]
    fn log_axes_tick_at_one_and_three_times_powers_of_ten() {
        assert_eq!(
            labels(0.0001, 0.01, Scale::Log),
            ["1e-4", "3e-4", "0.001", "0.003", "0.01"]
        );
        assert_eq!(labels(0.0025, 0.03, Scale::Log), ["0.003", "0.01", "0.03"]);
        assert_eq!(
            labels(1e-6, 1.0, Scale::Log),
            ["1e-6", "1e-5", "1e-4", "0.001", "0.01", "0.1", "1"]
        );
        assert_eq!(labels(0.04, 0.3, Scale::Log), ["0.05", "0.1", "0.2"]);
        assert_eq!(
            labels(0.5, 0.9, Scale::Log),
            ["0.5", "0.6", "0.7", "0.8", "0.9"]
        );
    }

    #[test]
    fn linear_axes_tick_at_round_steps_and_integer_axes_at_whole_numbers() {
        assert_eq!(
            labels(0.0, 0.99, Scale::Linear),
            ["0", "0.2", "0.4", "0.6", "0.8"]
        );
        assert_eq!(
            labels(98.05, 98.25, Scale::Linear),
            ["98.05", "98.1", "98.15", "98.2", "98.25"],
            "no label twice"
        );
        assert_eq!(labels(1.0, 3.0, Scale::Integer), ["1", "2", "3"]);
        assert_eq!(labels(1.0, 1.4, Scale::Integer), ["1"]);
        assert_eq!(labels(1.0, 45.0, Scale::Integer), ["10", "20", "30", "40"]);
    }

    #[test]
    fn labels_read_as_a_person_writes_them() {
        assert_eq!(label(0.0500000000000001), "0.05");
        assert_eq!(label(0.30000000000000004), "0.3");
        assert_eq!(label(98.76543), "98.8");
        assert_eq!(label(250.0), "250");
        assert_eq!(label(0.0003), "3e-4");
        assert_eq!(label(0.001), "0.001");
        assert_eq!(label(2_000_000.0), "2e6");
    }

    #[test]
    fn an_axis_ticks_where_its_values_are() {
        let a = TickedAxis::for_values(0.0001, 0.01, Scale::Log, 0.05);
        let shown: Vec<String> = a.ticks.iter().map(|t| label(t.exp())).collect();
        assert_eq!(shown, ["1e-4", "3e-4", "0.001", "0.003", "0.01"]);
    }
}
