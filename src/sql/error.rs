//! Diagnostics for statements: one type for syntax and validation errors, rendered by miette
//! with a label on the offending token of the whole (multi-line, multi-statement) input.

use crate::code::Code;
use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use super::ast::Span;

/// What went wrong, before it is attached to the input it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
    /// Other places worth showing, e.g. the first of two duplicate names.
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            span,
            label: "here".into(),
            secondary: Vec::new(),
            help: None,
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }
}

/// A statement that could not be parsed or is not valid, with the input it came from.
///
/// When several statements are wrong, the first problem is the error and the others are
/// reported as related diagnostics.
#[derive(Debug)]
pub struct SqlError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    problem: Problem,
    source: NamedSource<String>,
    related: Vec<SqlError>,
}

impl SqlError {
    pub fn new(problems: Vec<Problem>, name: &str, src: &str) -> Self {
        // Diagnostics quote the input; credentials in it must not be printed.
        let source = NamedSource::new(name, mask_secrets(src));
        let mut problems = problems.into_iter();
        let first = problems
            .next()
            .unwrap_or_else(|| Problem::new(Code::Sql, Span::default(), "invalid input"));
        let related = problems
            .map(|problem| {
                SqlError(Box::new(Inner {
                    problem,
                    source: source.clone(),
                    related: Vec::new(),
                }))
            })
            .collect();
        SqlError(Box::new(Inner {
            problem: first,
            source,
            related,
        }))
    }

    /// The primary problem (what the tests and callers match on).
    pub fn problem(&self) -> &Problem {
        &self.0.problem
    }

    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        std::iter::once(&self.0.problem).chain(self.0.related.iter().map(|e| &e.0.problem))
    }

    /// The diagnostic rendered without colours, as the tests snapshot it.
    pub fn render_plain(&self) -> String {
        let mut out = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, self);
        out
    }
}

/// `src` with the value of every credential-looking property replaced by `*`s of the same
/// length (so byte offsets stay valid). A lexical scan, so it works on statements that do not
/// parse: a quoted string right after a quoted secret key and `=` is a secret value.
pub fn mask_secrets(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    // The content of the last string literal and where it ended.
    let mut last_key: Option<(String, usize)> = None;
    while i < bytes.len() {
        let q = bytes[i];
        if q != b'"' && q != b'\'' {
            i += 1;
            continue;
        }
        // Find the end of this literal (backslash escapes, doubled quotes).
        let start = i + 1;
        let mut j = start;
        while j < bytes.len() {
            if bytes[j] == b'\\' {
                j += 2;
                continue;
            }
            if bytes[j] == q {
                if j + 1 < bytes.len() && bytes[j + 1] == q {
                    j += 2;
                    continue;
                }
                break;
            }
            j += 1;
        }
        let end = j.min(bytes.len());
        let content = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        let after_equals = last_key.as_ref().is_some_and(|(key, key_end)| {
            super::is_secret_key(key)
                && src
                    .get(*key_end..i)
                    .is_some_and(|between| between.trim() == "=")
        });
        if after_equals {
            for b in &mut out[start..end] {
                // Keep UTF-8 valid: replace whole bytes of multi-byte characters too.
                *b = b'*';
            }
            last_key = None;
        } else {
            last_key = Some((content, (end + 1).min(bytes.len())));
        }
        i = end + 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| src.to_string())
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.problem.message)
    }
}

impl std::error::Error for SqlError {}

impl Diagnostic for SqlError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.0.problem.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.0.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.0.problem.label.clone()),
            self.0.problem.span,
        );
        let secondary = self
            .0
            .problem
            .secondary
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.0.related.iter().map(|e| e as &dyn Diagnostic),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_secrets;

    #[test]
    fn masks_secret_values_and_keeps_offsets() {
        let src = r#"PROPERTIES ("aws.s3.secret_key" = "abc\"d", 'password'='p''w', "aws.s3.region" = "us")"#;
        let masked = mask_secrets(src);
        assert_eq!(masked.len(), src.len());
        assert!(
            !masked.contains("abc") && !masked.contains("p''w"),
            "{masked}"
        );
        assert!(masked.contains("\"us\""), "other values stay: {masked}");
        assert_eq!(mask_secrets("\"unclosed"), "\"unclosed");
        assert_eq!(
            mask_secrets("'password' = 'é'").len(),
            "'password' = 'é'".len()
        );
    }
}
