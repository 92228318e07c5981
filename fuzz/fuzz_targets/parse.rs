//! The statement parser on arbitrary input: it must never panic, every error must point inside
//! the input, and whatever parses must print back to SQL that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match srbackup::sql::parse(text) {
        Ok(statements) => {
            for stmt in statements {
                let printed = stmt.to_string();
                let again = srbackup::sql::parse_one(&printed)
                    .unwrap_or_else(|e| panic!("canonical SQL does not parse: {printed}\n{e:?}"));
                assert_eq!(again, stmt, "round trip changed the tree of {printed}");
            }
        }
        Err(e) => {
            for problem in e.problems() {
                assert!(problem.span.end <= text.len(), "span past the input");
                assert!(
                    problem.code != srbackup::code::Code::Internal,
                    "internal error: {}",
                    problem.message
                );
            }
            let _ = e.render_plain();
        }
    }
});
