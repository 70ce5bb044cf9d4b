//! `key=value` overrides addressed by dotted path, shared by `--set` and sweep specs.

use std::fmt;
use std::str::FromStr;

/// One override: a dotted key path and the TOML value to put there.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Key path segments, e.g. ["optimizer", "lr"].
    pub path: Vec<String>,
    /// The new value.
    pub value: toml::Value,
}

impl Override {
    /// An override of the dotted `key` with `value`.
    pub fn new(key: &str, value: toml::Value) -> Self {
        Self {
            path: split_key(key),
            value,
        }
    }

    /// The dotted key.
    pub fn key(&self) -> String {
        self.path.join(".")
    }
}

/// Splits a dotted key ("augment.affine.scale") into segments.
pub fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(|s| s.trim().to_string()).collect()
}

impl FromStr for Override {
    type Err = String;

    /// Parses `key=value`; the value is TOML (`0.1`, `[20, 35]`, `true`, `"x"`), and anything
    /// that is not valid TOML is taken as a string (`data.dir=/tmp/mnist`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, raw) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not of the form key=value (e.g. optimizer.lr=0.1)"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
            return Err(format!(
                "`{s}`: the key must be a dotted path like optimizer.lr"
            ));
        }
        Ok(Self::new(key, parse_value(raw.trim())))
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key(), self.value)
    }
}

/// Parses a TOML value, falling back to a plain string.
pub fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Sets each override in `table`, creating missing tables on the way.
///
/// On failure returns the offending key path and a message.
pub fn apply_overrides(
    table: &mut toml::Table,
    overrides: &[Override],
) -> Result<(), (Vec<String>, String)> {
    for o in overrides {
        set_path(table, &o.path, o.value.clone())?;
    }
    Ok(())
}

/// Sets `path` in `table` to `value`.
pub fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), (Vec<String>, String)> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| (Vec::new(), "empty key".to_string()))?;
    let mut current = table;
    for (i, segment) in parents.iter().enumerate() {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            other => {
                return Err((
                    path[..=i].to_vec(),
                    format!(
                        "is {}, not a table, so `{}` cannot be set",
                        crate::text::a_type(other),
                        path.join(".")
                    ),
                ));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Reads the value at `path`, if present.
pub fn get_path<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let mut value = table.get(first)?;
    for segment in rest {
        value = value.as_table()?.get(segment)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_arrays_and_bare_strings() {
        let o: Override = "optimizer.lr=0.1".parse().unwrap();
        assert_eq!(o.path, vec!["optimizer", "lr"]);
        assert_eq!(o.value, toml::Value::Float(0.1));
        let o: Override = "schedule.milestones=[25, 50]".parse().unwrap();
        assert_eq!(o.value.as_array().unwrap().len(), 2);
        let o: Override = "data.dir=/tmp/mnist".parse().unwrap();
        assert_eq!(o.value, toml::Value::String("/tmp/mnist".into()));
    }

    #[test]
    fn rejects_malformed_overrides() {
        assert!("optimizer.lr".parse::<Override>().is_err());
        assert!("=3".parse::<Override>().is_err());
        assert!("a..b=3".parse::<Override>().is_err());
    }

    #[test]
    fn creates_missing_tables_and_refuses_to_descend_into_values() {
        let mut t = toml::Table::new();
        set_path(&mut t, &split_key("augment.affine.degrees"), 20.into()).unwrap();
        assert_eq!(
            get_path(&t, &split_key("augment.affine.degrees")),
            Some(&toml::Value::Integer(20))
        );
        let err = set_path(&mut t, &split_key("augment.affine.degrees.x"), 1.into()).unwrap_err();
        assert_eq!(err.0, split_key("augment.affine.degrees"));
    }
}
