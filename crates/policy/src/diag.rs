//! Located validation errors: every problem in a policy file, each with file:line:column.

use std::fmt;
use std::ops::Range;

/// One problem found in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code, such as `unknown_key` or `dangling_reference`.
    pub code: &'static str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Plain message: lowercase, no final period, names in backticks.
    pub message: String,
}

/// Every problem found in one policy file, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file name the positions refer to.
    pub file: String,
    /// The problems.
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error[{}]: {}",
                self.file, d.line, d.column, d.code, d.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics while a file is read, turning byte offsets into lines and columns.
pub(crate) struct Sink<'s> {
    src: &'s str,
    line_starts: Vec<usize>,
    items: Vec<(usize, Diagnostic)>,
}

impl<'s> Sink<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Sink {
            src,
            line_starts,
            items: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, span: Range<usize>, code: &'static str, message: String) {
        let offset = span.start.min(self.src.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self
            .src
            .get(line_start..offset)
            .map_or(1, |prefix| prefix.chars().count() + 1);
        self.items.push((
            offset,
            Diagnostic {
                code,
                line: line_index + 1,
                column,
                message,
            },
        ));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn finish(mut self, file: &str) -> Diagnostics {
        self.items.sort_by_key(|(offset, _)| *offset);
        self.items.dedup();
        Diagnostics {
            file: file.to_string(),
            items: self.items.into_iter().map(|(_, d)| d).collect(),
        }
    }
}
