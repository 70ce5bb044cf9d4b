//! TOML source files that remember where each key is, so that errors can name a line.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A TOML file's text, kept so that dotted key paths can be mapped back to line numbers.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    doc: toml_edit::Document<String>,
}

impl SourceFile {
    /// Reads and parses `path`; a syntax error names the file, line and column.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        if path.is_dir() {
            let hint = if path.join("journal.jsonl").is_file() {
                format!(
                    "; it is a sweep's results directory: its spec is {}",
                    path.join("spec.toml").display()
                )
            } else {
                String::new()
            };
            anyhow::bail!(
                "{} is a directory, and a TOML file was expected{hint}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(path, text)
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(path: &Path, text: String) -> anyhow::Result<Self> {
        let doc = toml_edit::Document::parse(text.clone()).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(&text, s.start));
            anyhow::Error::new(KeyError {
                file: path.to_path_buf(),
                line,
                key: String::new(),
                message: format!("invalid TOML: {}", e.message()),
            })
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
            doc,
        })
    }

    /// The file this source was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document as a plain TOML table (spans dropped).
    pub fn table(&self) -> anyhow::Result<toml::Table> {
        toml::from_str(&self.text).with_context(|| format!("cannot parse {}", self.path.display()))
    }

    /// The 1-based line of the deepest key of `path` that exists in this file.
    ///
    /// `path` is a list of table keys and array indices rendered as text (`["search", "trials",
    /// "2", "optimizer.lr"]`); quoted dotted keys like `"optimizer.lr"` are a single segment.
    pub fn line_of(&self, path: &[String]) -> Option<usize> {
        let mut node = Node::Table(self.doc.as_table());
        let mut best = None;
        for segment in path {
            let Some((span, next)) = node.child(segment) else {
                break;
            };
            if let Some(span) = span {
                best = Some(line_of_offset(&self.text, span.start));
            }
            node = next;
        }
        best
    }

    /// An error about `path`, located at the line where the key is (if it is in this file).
    pub fn error_at(&self, path: &[String], message: impl Into<String>) -> KeyError {
        KeyError {
            file: self.path.clone(),
            line: self.line_of(path),
            key: path.join("."),
            message: message.into(),
        }
    }
}

/// One step of a walk down a spanned TOML document; toml_edit keeps tables, items and values
/// apart, so the walk needs all three.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
}

type Span = Option<std::ops::Range<usize>>;

impl<'a> Node<'a> {
    fn child(self, segment: &str) -> Option<(Span, Node<'a>)> {
        let index = segment.parse::<usize>().ok();
        match self {
            Node::Table(t) => t
                .get_key_value(segment)
                .map(|(k, v)| (k.span(), Node::Item(v))),
            Node::Item(toml_edit::Item::Table(t)) => Node::Table(t).child(segment),
            Node::Item(toml_edit::Item::Value(v)) => Node::Value(v).child(segment),
            Node::Item(toml_edit::Item::ArrayOfTables(a)) => {
                a.get(index?).map(|t| (t.span(), Node::Table(t)))
            }
            Node::Item(_) => None,
            Node::Value(toml_edit::Value::InlineTable(t)) => t
                .get_key_value(segment)
                .map(|(k, v)| (k.span(), Node::Item(v))),
            Node::Value(toml_edit::Value::Array(a)) => {
                a.get(index?).map(|v| (v.span(), Node::Value(v)))
            }
            Node::Value(_) => None,
        }
    }
}

/// The 1-based line number of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// An error about one key of one file: "file:line: key: message".
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    /// The file the key is in (or was meant to be in).
    pub file: PathBuf,
    /// 1-based line, when the key exists in the file.
    pub line: Option<usize>,
    /// Dotted key path; empty for errors about the whole file.
    pub key: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for KeyError {}

/// Several key errors reported together, one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyErrors(pub Vec<KeyError>);

impl fmt::Display for KeyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        if n > 1 {
            writeln!(f, "{n} problems:")?;
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if n > 1 {
                write!(f, "  ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KeyErrors {}
