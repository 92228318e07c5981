//! Credentials out of everything srbackup prints: statements quoted in diagnostics and logs,
//! URLs in errors.
//!
//! A statement that parses is masked from its parse tree: the value of every property whose
//! key, unescaped (`"aws.s3.se\cret_ke\y"` is `aws.s3.secret_key`), names a credential, and
//! wherever it is (comments between key and `=` change nothing). One that does not parse has
//! no tree: then its tokens are read as the grammar's lexer would (comments skipped, quoted
//! keys unescaped, bare words too), and the token after `key =` is masked when the key names a
//! credential.
//! Every string's URL userinfo (`http://user:password@host`) is masked in both cases.
//! Masking keeps byte offsets, so diagnostic spans still point at the right place.

use std::ops::Range;

use pest::Parser;

use super::{Rule, StatementParser, is_secret_key};

/// `src` with every secret replaced by `*`s of the same byte length.
pub fn mask_secrets(src: &str) -> String {
    let mut out = src.as_bytes().to_vec();
    for span in secret_spans(src) {
        for b in &mut out[span.start.min(src.len())..span.end.min(src.len())] {
            // Every byte of a multi-byte character becomes one `*`: still valid UTF-8.
            *b = b'*';
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| "*".repeat(src.len()))
}

/// `problem` with every secret of `src` it quotes (a syntax error names the unexpected token,
/// which may be a credential) masked in its message, labels and help.
pub fn mask_problem(mut problem: super::Problem, src: &str) -> super::Problem {
    let mut secrets: Vec<&str> = secret_spans(src)
        .into_iter()
        .filter_map(|r| src.get(r))
        .filter(|s| !s.is_empty())
        .collect();
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let scrub = |text: &mut String| {
        for s in &secrets {
            if text.contains(s) {
                *text = replace_secret(text, s);
            }
        }
        *text = mask_userinfo(text);
    };
    // A statement naming a password that does not parse: the parser's words may quote any of
    // its tokens (`unexpected `…``); none of them is shown.
    if StatementParser::parse(Rule::statements, src).is_err() && mentions_password(src) {
        for text in [&mut problem.message, &mut problem.label] {
            *text = mask_backquoted(text);
        }
        if let Some(help) = &mut problem.help {
            *help = mask_backquoted(help);
        }
    }
    scrub(&mut problem.message);
    scrub(&mut problem.label);
    if let Some(help) = &mut problem.help {
        scrub(help);
    }
    for (_, label) in &mut problem.secondary {
        scrub(label);
    }
    problem
}

fn mentions_password(src: &str) -> bool {
    let upper = src.to_ascii_uppercase();
    upper.contains("IDENTIFIED") || upper.contains("PASSWORD")
}

/// Every `…` span of a message replaced by the mask.
fn mask_backquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '`' {
            if inside {
                out.push_str(super::MASK);
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// `text` with `secret` masked: everywhere when it is 4 bytes or longer; a shorter one only as
/// a whole word (masking every `a` of a message would leave nothing readable).
fn replace_secret(text: &str, secret: &str) -> String {
    if secret.len() >= 4 {
        return text.replace(secret, super::MASK);
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + secret.len()..].chars().next();
        out.push_str(&rest[..at]);
        if word(before) || word(after) {
            out.push_str(secret);
        } else {
            out.push_str(super::MASK);
        }
        rest = &rest[at + secret.len()..];
    }
    out.push_str(rest);
    out
}

/// The byte ranges of `src` that hold secrets.
pub fn secret_spans(src: &str) -> Vec<Range<usize>> {
    match StatementParser::parse(Rule::statements, src) {
        Ok(pairs) => {
            let mut spans = Vec::new();
            for pair in pairs.flatten() {
                match pair.as_rule() {
                    Rule::property => {
                        let inner: Vec<_> = pair.into_inner().collect();
                        let find = |rule| inner.iter().find(|p| p.as_rule() == rule);
                        let (Some(key), Some(value)) =
                            (find(Rule::property_key), find(Rule::property_value))
                        else {
                            continue;
                        };
                        if is_secret_key(&literal_text(key.as_str())) {
                            let s = value.as_span();
                            // The value's content, quotes kept.
                            spans.push(s.start() + 1..s.end().saturating_sub(1).max(s.start() + 1));
                        }
                    }
                    // Passwords and password hashes of account statements.
                    Rule::password_text | Rule::hashed_text => {
                        let s = pair.as_span();
                        spans.push(s.start() + 1..s.end().saturating_sub(1).max(s.start() + 1));
                    }
                    Rule::dq_string | Rule::sq_string => {
                        let s = pair.as_span();
                        spans.extend(
                            userinfo_spans(pair.as_str())
                                .into_iter()
                                .map(|r| s.start() + r.start..s.start() + r.end),
                        );
                    }
                    _ => {}
                }
            }
            spans
        }
        Err(_) => lexical_spans(src),
    }
}

/// A quoted literal's value (quotes removed, escapes undone), for judging a key.
fn literal_text(text: &str) -> String {
    let text = text.trim();
    // Back-quoted too: `encryption.key` = "…" is still a key's value.
    let Some(quote) = text
        .chars()
        .next()
        .filter(|q| *q == '"' || *q == '\'' || *q == '`')
    else {
        return text.to_string();
    };
    let body = text
        .strip_prefix(quote)
        .and_then(|t| t.strip_suffix(quote))
        .unwrap_or(&text[1..]);
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if c == quote && chars.peek() == Some(&quote) => {
                chars.next();
                out.push(quote);
            }
            c => out.push(c),
        }
    }
    out
}

/// Without a parse tree: the token after `key =` when the key (quoted or bare, unescaped)
/// names a credential, comments and whitespace skipped; and the userinfo of every quoted
/// string.
fn lexical_spans(src: &str) -> Vec<Range<usize>> {
    let bytes = src.as_bytes();
    let mut spans = Vec::new();
    // The text of the last token, and whether an `=` followed it.
    let mut last: Option<String> = None;
    let mut after_equals = false;
    // Account statements: the string after IDENTIFIED BY [PASSWORD], WITH plugin BY|AS, and
    // PASSWORD( is a password or its hash.
    let upper = src.to_ascii_uppercase();
    let accounts = upper.contains("IDENTIFIED") || upper.contains("PASSWORD");
    let mut password_next = false;
    // Once a password position is reached in a statement that does not parse, everything up
    // to the end of the statement is treated as secret: adjacent strings, a bare word, a
    // back-quoted name, a quote escaped by a backslash all stay masked.
    let mut password_tail = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Comments: /* ... */, -- ..., # ...
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = src[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |e| i + 2 + e + 2);
            continue;
        }
        if (c == b'-' && bytes.get(i + 1) == Some(&b'-')) || c == b'#' {
            i = src[i..].find('\n').map_or(bytes.len(), |e| i + e + 1);
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'=' {
            after_equals = last.as_deref().is_some_and(is_secret_key);
            last = None;
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            let end = literal_end(bytes, i);
            let content = i + 1..end.min(bytes.len());
            password_tail |= password_next;
            if after_equals || password_tail {
                spans.push(content.clone());
                last = None;
            } else {
                if c != b'`' {
                    spans.extend(
                        userinfo_spans(&src[i..end.min(bytes.len())])
                            .into_iter()
                            .map(|r| i + r.start..i + r.end),
                    );
                }
                last = Some(literal_text(&src[i..(end + 1).min(bytes.len())]));
            }
            after_equals = false;
            password_next = false;
            i = end + 1;
            continue;
        }
        // A bare word or number.
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(
                bytes[i],
                b'=' | b',' | b'(' | b')' | b';' | b'"' | b'\'' | b'`'
            )
        {
            i += 1;
        }
        if i == start {
            // `PASSWORD(` keeps the next string secret; `;` ends the statement.
            password_next = password_next && bytes[start] == b'(';
            if bytes[start] == b';' {
                password_tail = false;
            }
            i += 1; // punctuation
            last = None;
        } else if after_equals || password_tail || password_next {
            password_tail = true;
            spans.push(start..i);
            last = None;
        } else {
            let word = src[start..i].to_ascii_uppercase();
            password_next = accounts && matches!(word.as_str(), "BY" | "AS" | "PASSWORD");
            last = Some(src[start..i].to_string());
        }
        after_equals = false;
    }
    spans
}

/// Where the literal opening at `open` ends (its closing quote, or the end of the input).
fn literal_end(bytes: &[u8], open: usize) -> usize {
    let q = bytes[open];
    let mut j = open + 1;
    while j < bytes.len() {
        if bytes[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if bytes[j] == q {
            if bytes.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j;
        }
        j += 1;
    }
    bytes.len()
}

/// The userinfo of every `scheme://userinfo@host` in `text`: the password after the `:`, or
/// the whole userinfo when it has no `:` (a bare token).
pub fn userinfo_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        // The authority ends at the first '/', '?', '#', whitespace or quote.
        let authority_end = text[start..]
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .map_or(text.len(), |e| start + e);
        if let Some(at) = text[start..authority_end].rfind('@') {
            let info = start..start + at;
            match text[info.clone()].find(':') {
                Some(colon) => spans.push(info.start + colon + 1..info.end),
                None => spans.push(info),
            }
        }
        from = authority_end.max(start);
    }
    spans
}

/// `text` (an error, a location) with URL userinfo masked: for what is printed but not
/// pointed into, so lengths need not be kept.
pub fn mask_userinfo(text: &str) -> String {
    let spans = userinfo_spans(text);
    if spans.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        out.push_str(super::MASK);
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(src: &str, secret: &str) {
        let masked = mask_secrets(src);
        assert_eq!(masked.len(), src.len(), "{masked}");
        assert!(!masked.contains(secret), "{secret} shows in {masked}");
    }

    #[test]
    fn passwords_are_masked_whether_the_statement_parses_or_not() {
        for src in [
            "CREATE USER u IDENTIFIED BY 'hunter22'",
            "CREATE USER u IDENTIFIED BY 'hunter22' BOGUS",
            "ALTER USER 'u'@'%' IDENTIFIED WITH caching_sha2_password BY \"hunter22\"",
            "SET PASSWORD FOR u = PASSWORD('hunter22')",
            "SET PASSWORD FOR u = PASSWORD('hunter22') EXTRA",
            "CREATE USER u IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9' x",
            "CREATE USER 'y'@'%' IDENTIFIED BY 'hunter22",
            "SET PASSWORD=PASSWORD('hunter22')",
            "SET PASSWORD = PASSWORD('hunter22\\')",
            "ALTER USER x IDENTIFIED BY 'ok' 'hunter22'",
            "CREATE USER x IDENTIFIED BY hunter22",
            "CREATE USER x IDENTIFIED BY `hunter22`",
            "SET PASSWORD FOR u = PASSWORD('hunter22' 'hunter22')",
        ] {
            let masked = mask_secrets(src);
            assert!(!masked.contains("hunter22"), "{masked}");
            // And the parser's own words about it.
            if let Err(e) = crate::sql::parse(src) {
                let p = mask_problem(e.problem().clone(), src);
                assert!(!p.message.contains("hunter22"), "{}", p.message);
                assert!(!p.label.contains("hunter22"), "{}", p.label);
            }
            assert!(!masked.contains("6BB4837EB7"), "{masked}");
            assert_eq!(masked.len(), src.len());
        }
    }

    #[test]
    fn secrets_are_masked_however_the_key_is_written() {
        let repo = |props: &str| {
            format!("CREATE REPOSITORY r WITH BROKER ON LOCATION \"s3://b/p\" PROPERTIES ({props})")
        };
        hidden(
            &repo(r#""aws.s3.secret_key" = "S3CR3T", "aws.s3.region" = "us""#),
            "S3CR3T",
        );
        // A comment between the key and `=`.
        hidden(&repo(r#""aws.s3.secret_key" /* c */ = "S3CR3T""#), "S3CR3T");
        hidden(
            &repo(
                r#""aws.s3.secret_key" -- c
            = "S3CR3T""#,
            ),
            "S3CR3T",
        );
        // Escapes inside the key.
        hidden(&repo(r#""aws.s3.se\cret_ke\y" = "S3CR3T""#), "S3CR3T");
        hidden(&repo(r#"'pass\word' = 'S3CR3T'"#), "S3CR3T");
        // A statement that does not parse: the value after a credential's key is masked,
        // whatever comes between.
        hidden(
            &repo(r#""aws.s3.secret_key" = "S3CR3T" "#).replace("PROPERTIES (", "PROPERTIES (("),
            "S3CR3T",
        );
        hidden(
            r#"CREATE REPOSITORY r PROPERTIES ("password" = S3CR3T"#,
            "S3CR3T",
        );
        hidden(
            r#"CREATE REPOSITORY r PROPERTIES ("pass\word" /* c */ = "S3CR3T"#,
            "S3CR3T",
        );
        hidden(
            r#"CREATE REPOSITORY r PROPERTIES (aws.s3.secret_key -- c
            = 'S3CR3T' ((("#,
            "S3CR3T",
        );
        // ... and what is not a credential stays readable.
        let masked = mask_secrets(r#"SHOW SNAPSHOT ON r WHERE LABEL = "x" ((("#);
        assert!(masked.contains("\"x\""), "{masked}");
        // Userinfo in any string.
        hidden(
            &repo(r#""aws.s3.endpoint" = "http://user:S3CR3T@127.0.0.1:9000""#),
            "S3CR3T",
        );
        hidden(
            r#"CREATE REPOSITORY r ON LOCATION "hdfs://u:S3CR3T@nn:8020/x" ((("#,
            "S3CR3T",
        );
        // Other values stay readable in a statement that parses.
        let masked = mask_secrets(&repo(
            r#""aws.s3.secret_key" = "S3CR3T", "aws.s3.region" = "us-west-2""#,
        ));
        assert!(masked.contains("us-west-2"), "{masked}");
        assert_eq!(mask_secrets("\"unclosed"), "\"unclosed");
        assert_eq!(
            mask_secrets("'password' = 'é'").len(),
            "'password' = 'é'".len()
        );
    }

    #[test]
    fn problems_quote_no_secret() {
        let src =
            r#"CREATE REPOSITORY r PROPERTIES ("aws.s3.secret_key" = TOPSECRET, "password" = "a")"#;
        let p = mask_problem(
            crate::sql::Problem::new(
                crate::code::Code::Sql,
                crate::sql::Span::default(),
                "unexpected `TOPSECRET`; a value is a quoted string, `a`",
            ),
            src,
        );
        // A one-letter secret is masked only as a word: the article too, which is the price.
        assert_eq!(
            p.message,
            "unexpected `******`; ****** value is ****** quoted string, `******`"
        );
    }

    #[test]
    fn userinfo_is_masked_in_printed_text() {
        assert_eq!(
            mask_userinfo("cannot reach http://user:pw@host:9000/b: refused"),
            "cannot reach http://user:******@host:9000/b: refused"
        );
        assert_eq!(mask_userinfo("s3://tok@bucket/x"), "s3://******@bucket/x");
        assert_eq!(mask_userinfo("http://host/a@b"), "http://host/a@b");
        assert_eq!(mask_userinfo("no url"), "no url");
    }
}
