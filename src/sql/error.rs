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
        let source = NamedSource::new(name, super::mask::mask_secrets(src));
        let mut problems = problems
            .into_iter()
            .map(|p| super::mask::mask_problem(p, src));
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
