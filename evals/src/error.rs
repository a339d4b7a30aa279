//! The errors of loading a suite: each names the file, the line (and column when known) and the
//! field, so `meshos evals run` can print `suites/support.yaml:14:5: scorers[2].pattern: …`.

use std::fmt;

/// A place in a file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{c}", self.line),
            None => write!(f, "{}", self.line),
        }
    }
}

/// Why a suite, its dataset or a file it names could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SuiteError {
    /// The file is not valid: YAML/JSON/CSV syntax, a wrong type, an unknown or missing field,
    /// or a rule of the format (an unknown placeholder, a duplicate item id, a bad regex…).
    #[error("{file}{}: {field}: {message}", at.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: String,
        at: Option<Location>,
        /// The field path, e.g. `scorers[2].pattern`, or `id` for a dataset row.
        field: String,
        message: String,
    },
    /// A file could not be read.
    #[error("{path}: cannot read: {message}")]
    Io { path: String, message: String },
}

impl SuiteError {
    pub(crate) fn invalid(
        file: &str,
        at: Option<Location>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> SuiteError {
        SuiteError::Invalid {
            file: file.to_string(),
            at,
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &str, error: &std::io::Error) -> SuiteError {
        SuiteError::Io {
            path: path.to_string(),
            message: error.to_string(),
        }
    }

    /// The line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            SuiteError::Invalid { at, .. } => at.map(|l| l.line),
            SuiteError::Io { .. } => None,
        }
    }

    /// The field path the error names (`None` for I/O errors).
    pub fn field(&self) -> Option<&str> {
        match self {
            SuiteError::Invalid { field, .. } => Some(field),
            SuiteError::Io { .. } => None,
        }
    }

    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            SuiteError::Invalid { file, .. } => file,
            SuiteError::Io { path, .. } => path,
        }
    }
}

/// A serde_yaml error as (location, field path, message): serde_yaml puts the path first
/// (`scorers[0].max_ms: invalid type …`) and the location last (`… at line 3 column 13`).
pub(crate) fn split_yaml_error(e: &serde_yaml::Error) -> (Option<Location>, String, String) {
    let at = e.location().map(|l| Location {
        line: l.line(),
        column: Some(l.column()),
    });
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    match text.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !path.is_empty() => {
            (at, path.to_string(), rest.to_string())
        }
        _ => (at, "(document)".to_string(), text),
    }
}
