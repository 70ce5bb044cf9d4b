//! How `sweep` writes numbers, values and tables for people: the one home of its formatting
//! helpers (metric values, durations, TOML values, counts, plain-text tables).

/// `n` and `noun`, plural unless `n` is 1: `count(1, "trial")` is "1 trial".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A TOML type's name with its article: "an integer", "a string".
pub fn a_type(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// A serde error message in the words of the spec's reader, not Rust's types:
/// "expected usize" reads "expected a whole number".
pub fn plain_serde(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    [
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("floating point `", "decimal number `"),
    ]
    .iter()
    .fold(first.to_string(), |m, (rust, plain)| m.replace(rust, plain))
}

/// A metric value as a person reads it: percentages to 2 decimals, losses and other small
/// values to 4.
pub fn format_metric(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// "1h02m", "5m30s", "12s".
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Renders a TOML value as it would be written in a file (`0.01`, `[20, 35]`, `true`).
pub fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(super::count(1, "trial"), "1 trial");
        assert_eq!(super::count(0, "trial"), "0 trials");
        assert_eq!(super::count(2, "epoch"), "2 epochs");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::human_duration(12.4), "12s");
        assert_eq!(super::human_duration(330.0), "5m30s");
        assert_eq!(super::human_duration(3720.0), "1h02m");
    }

    #[test]
    fn types_read_as_english() {
        assert_eq!(super::a_type(&toml::Value::Integer(1)), "an integer");
        assert_eq!(super::a_type(&toml::Value::String("x".into())), "a string");
        assert_eq!(
            super::plain_serde("invalid type: floating point `1.5`, expected usize"),
            "invalid type: decimal number `1.5`, expected a whole number (0 or more)"
        );
    }
}
