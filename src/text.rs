//! Wording shared by every message: counts with their noun in the right number.

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

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(super::count(1, "trial"), "1 trial");
        assert_eq!(super::count(0, "trial"), "0 trials");
        assert_eq!(super::count(2, "epoch"), "2 epochs");
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
