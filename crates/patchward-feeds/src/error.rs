//! The one error type of every parser in this crate: it always says *where* — the file (or
//! feed) name, the line when known, the field or record when known — and *what*.
//!
//! Display: `hosts.csv:14: field "build": not an OS build: "10.0.x"`.

use std::fmt;

/// A parse failure with its location.
///
/// `source` is the file or feed name (a path, `known_exploited_vulnerabilities.json`,
/// `2024-May`, …). Parsers that only see bytes take the name as a parameter; callers that read
/// the bytes themselves can also rename it afterwards with [`ParseError::with_source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub source: String,
    /// 1-based line number, when the format has lines and the position is known.
    pub line: Option<u64>,
    /// Field, column or record path, e.g. `build`, `vulnerabilities[12] (CVE-2024-1234).dueDate`.
    pub field: Option<String>,
    pub message: String,
}

impl ParseError {
    /// The general constructor: source, optional line, optional field, message.
    pub fn new(
        source: impl Into<String>,
        line: Option<u64>,
        field: Option<&str>,
        message: &str,
    ) -> Self {
        ParseError::at(source, line, field, message)
    }

    /// Like [`ParseError::new`], taking the message by value (`format!(…)` without a borrow).
    pub fn at(
        source: impl Into<String>,
        line: Option<u64>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ParseError {
            source: source.into(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// An error about the whole source (no line, no field).
    pub fn whole(source: impl Into<String>, message: impl Into<String>) -> Self {
        ParseError::at(source, None, None, message)
    }

    /// An error at a line.
    pub fn at_line(source: impl Into<String>, line: u64, message: impl Into<String>) -> Self {
        ParseError::at(source, Some(line), None, message)
    }

    /// An error in a field (optionally at a line).
    pub fn at_field(
        source: impl Into<String>,
        line: Option<u64>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ParseError {
            source: source.into(),
            line,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Set the line.
    #[must_use]
    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Set the field or record path.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Replace the source name (for callers that read the bytes and know the file name).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// A JSON syntax or shape error from serde_json, with its line.
    pub fn json(source: impl Into<String>, e: &serde_json::Error) -> Self {
        let line = (e.line() > 0).then_some(e.line() as u64);
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON document",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected JSON content",
            serde_json::error::Category::Io => "cannot read JSON",
        };
        // serde_json appends " at line L column C"; the line is shown by Display already.
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        ParseError {
            source: source.into(),
            line,
            field: None,
            message: format!("{what}: {msg}"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.source.is_empty() {
            "<input>"
        } else {
            &self.source
        })?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "field {field:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Several parse errors from one source (inventory imports report up to
/// [`ParseErrors::LIMIT`] problems at once, so the operator can fix them in one go).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParseErrors {
    pub errors: Vec<ParseError>,
    /// More errors were found than are listed.
    pub truncated: bool,
}

impl ParseErrors {
    /// How many errors are kept before the rest are only counted as "more".
    pub const LIMIT: usize = 20;

    pub fn new() -> Self {
        Self::default()
    }

    /// Add an error; returns `false` once the limit is reached (callers may stop early).
    pub fn push(&mut self, e: ParseError) -> bool {
        if self.errors.len() < Self::LIMIT {
            self.errors.push(e);
            true
        } else {
            self.truncated = true;
            false
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn first(&self) -> Option<&ParseError> {
        self.errors.first()
    }

    /// `Ok(v)` when no error was recorded, else `Err(self)`.
    pub fn into_result<T>(self, v: T) -> Result<T, ParseErrors> {
        if self.errors.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }

    /// Rename the source of every error.
    #[must_use]
    pub fn with_source(mut self, source: &str) -> Self {
        for e in &mut self.errors {
            e.source = source.to_string();
        }
        self
    }
}

impl From<ParseError> for ParseErrors {
    fn from(e: ParseError) -> Self {
        ParseErrors {
            errors: vec![e],
            truncated: false,
        }
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.truncated {
            write!(f, "\n(more errors not shown)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

/// 1-based line number of a byte offset in `text`.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

/// Line numbers of byte offsets, for many lookups in one text: the line starts are found once,
/// so each lookup is a binary search instead of a scan from the start (which made an estate of
/// 100,000 servers quadratic).
pub(crate) struct LineIndex {
    /// Byte offset of the first byte after every `\n`.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let starts = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        LineIndex { starts }
    }

    /// 1-based line of `offset` (same answer as [`line_of_offset`]).
    pub(crate) fn line(&self, offset: usize) -> u64 {
        // Newlines strictly before `offset` = line starts at or before it.
        self.starts.partition_point(|&s| s <= offset) as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let e = ParseError::at_field(
            "hosts.csv",
            Some(14),
            "build",
            "not an OS build: \"10.0.x\"",
        );
        assert_eq!(
            e.to_string(),
            r#"hosts.csv:14: field "build": not an OS build: "10.0.x""#
        );
        let e = ParseError::whole("kev.json", "no entries").with_source("x.json");
        assert_eq!(e.to_string(), "x.json: no entries");
        let e = ParseError::at_line("a", 3, "bad");
        assert_eq!(e.to_string(), "a:3: bad");
    }

    #[test]
    fn json_error_has_line() {
        let r: Result<serde_json::Value, _> = serde_json::from_str("{\n\"a\": [1,\n");
        let Err(e) = r else { unreachable!("must fail") };
        let p = ParseError::json("f.json", &e);
        assert!(p.line.is_some());
        assert!(p.message.starts_with("truncated JSON"), "{}", p.message);
    }

    #[test]
    fn errors_limit() {
        let mut es = ParseErrors::new();
        for i in 0..25 {
            es.push(ParseError::at_line("f", i, "x"));
        }
        assert_eq!(es.len(), ParseErrors::LIMIT);
        assert!(es.truncated);
        assert!(es.to_string().ends_with("(more errors not shown)"));
    }

    #[test]
    fn line_offsets() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 100), 3);
        for text in ["", "a", "a\nb\nc", "\n\n", "ab\n", "x\r\ny\n\nz"] {
            let idx = LineIndex::new(text);
            for off in 0..=text.len() + 2 {
                assert_eq!(idx.line(off), line_of_offset(text, off), "{text:?} @ {off}");
            }
        }
    }
}
