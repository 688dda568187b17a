//! Errors that decide the exit code. Everything else is a `color_eyre::Report` (exit 1).

use std::fmt;

/// A configuration or usage error: exit code 2. Names the file, line and column, the key and
/// what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column; 0 when the error is about the file as a whole.
    pub line: usize,
    pub col: usize,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "`{}`: {}", self.key, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A usage error that is not tied to a file position (bad flag combination, missing stage
/// input the operator must produce first): exit code 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit with a given code after printing the message (used for `plan --detailed-exitcode`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("exit {0}")]
pub struct ExitCode(pub i32);

/// Maps an error chain to the process exit code of docs/design.md §6.
pub fn exit_code_of(report: &color_eyre::Report) -> i32 {
    for cause in report.chain() {
        if cause.downcast_ref::<ConfigError>().is_some()
            || cause.downcast_ref::<UsageError>().is_some()
        {
            return 2;
        }
    }
    1
}
