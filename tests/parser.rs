//! The statement front end: every seed statement parses to a reviewed tree, prints back to SQL
//! that parses to the same tree, and every malformed statement gets a pointed diagnostic.

use std::path::Path;

use srbackup::sql::{self, Statement, Syntax};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_file(path: &Path) -> Vec<Statement> {
    let text = read(path);
    sql::parse(&text).unwrap_or_else(|e| panic!("{}:\n{}", path.display(), e.render_plain()))
}

/// `parse(display(ast)) == ast`, and printing is a fixed point.
fn assert_round_trip(stmt: &Statement) {
    let printed = stmt.to_string();
    let reparsed = sql::parse_one(&printed).unwrap_or_else(|e| {
        panic!(
            "canonical SQL does not parse: {printed}\n{}",
            e.render_plain()
        )
    });
    assert_eq!(&reparsed, stmt, "round trip changed the tree of: {printed}");
    assert_eq!(
        reparsed.to_string(),
        printed,
        "printing is not a fixed point"
    );
}

#[test]
fn every_statement_fixture_parses_to_its_reviewed_tree() {
    insta::glob!("../fixtures/statements", "*.sql", |path| {
        let statements = parse_file(path);
        insta::assert_yaml_snapshot!(statements);
    });
}

#[test]
fn every_statement_fixture_round_trips_through_canonical_sql() {
    insta::glob!("../fixtures/statements", "*.sql", |path| {
        let statements = parse_file(path);
        let canonical: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
        for stmt in &statements {
            assert_round_trip(stmt);
        }
        insta::assert_snapshot!(canonical.join(";\n"));
    });
}

#[test]
fn the_numbered_fixtures_are_exactly_the_seed() {
    let seed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed-statements.sql");
    let seed = parse_file(&seed_path);
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/statements"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(|c: char| c.is_ascii_digit())
            })
            .collect();
    files.sort();
    let split: Vec<Statement> = files.iter().flat_map(|p| parse_file(p)).collect();
    assert_eq!(seed.len(), 55, "the seed has 55 statements");
    assert_eq!(split, seed);
    // The seed file itself is the one in shared/, verbatim, when that is beside the repository.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/seed-statements.sql");
    if shared.exists() {
        assert_eq!(
            read(&shared),
            read(&seed_path),
            "fixtures/seed-statements.sql drifted from shared/"
        );
    }
}

/// v3.4 and legacy spellings of one statement, as the seed pairs them.
const SYNTAX_PAIRS: &[(&str, &str)] = &[
    (
        "07-backup-sr-hub-backup.sql",
        "08-backup-sr-hub-backup-legacy.sql",
    ),
    (
        "09-backup-sr-member-backup.sql",
        "10-backup-sr-member-backup-legacy.sql",
    ),
    (
        "13-backup-sr-par-backup.sql",
        "14-backup-sr-par-backup-legacy.sql",
    ),
    (
        "29-restore-sr-hub-backup.sql",
        "30-restore-sr-hub-backup-legacy.sql",
    ),
    (
        "32-restore-sr-member-backup-table-sr-member.sql",
        "33-restore-sr-member-backup-sr-member-legacy.sql",
    ),
    (
        "38-restore-sr-par-backup-table-sr-member-partition-p1.sql",
        "39-restore-sr-par-backup-sr-member-partition-p1-legacy.sql",
    ),
];

fn with_syntax(stmt: &Statement, syntax: Syntax) -> Statement {
    let mut stmt = stmt.clone();
    match &mut stmt {
        Statement::Backup(b) => b.syntax = syntax,
        Statement::Restore(r) => r.syntax = syntax,
        other => panic!("not a backup or restore: {other}"),
    }
    stmt
}

fn syntax_of(stmt: &Statement) -> Syntax {
    match stmt {
        Statement::Backup(b) => b.syntax,
        Statement::Restore(r) => r.syntax,
        other => panic!("not a backup or restore: {other}"),
    }
}

#[test]
fn legacy_and_v3_4_forms_give_the_same_tree_but_for_the_syntax_marker() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/statements");
    for (new, old) in SYNTAX_PAIRS {
        let new = parse_file(&dir.join(new)).remove(0);
        let old = parse_file(&dir.join(old)).remove(0);
        assert_eq!(syntax_of(&new), Syntax::V3_4);
        assert_eq!(syntax_of(&old), Syntax::Legacy);
        assert_ne!(new, old, "the syntax marker must tell them apart");
        assert_eq!(with_syntax(&old, Syntax::V3_4), new);
        // The serialized trees agree too once positions and the marker are set aside.
        let strip = |s: &Statement| {
            let mut v = serde_json::to_value(with_syntax(s, Syntax::V3_4)).unwrap();
            v.as_object_mut().unwrap().remove("span");
            v
        };
        assert_eq!(strip(&old), strip(&new));
    }
}

#[test]
fn reserved_words_need_back_quotes_and_then_work_as_names() {
    for word in sql::RESERVED_WORDS {
        let bare = format!("SHOW BACKUP FROM {word}");
        assert!(sql::parse(&bare).is_err(), "{bare} should be refused");
        let lower = format!("SHOW BACKUP FROM {}", word.to_lowercase());
        assert!(sql::parse(&lower).is_err(), "{lower} should be refused");
        let quoted = format!("SHOW BACKUP FROM `{word}`");
        let stmt = sql::parse_one(&quoted).unwrap();
        assert_round_trip(&stmt);
        match stmt {
            Statement::ShowBackup(s) => assert_eq!(s.database.unwrap().value, *word),
            other => panic!("{other}"),
        }
    }
    // Non-reserved keywords stay usable as names, and words that merely start with a keyword.
    for word in NON_RESERVED.iter().copied().chain([
        "force",
        "only",
        "read",
        "broker",
        "tables_2024",
        "tablet",
        "views1",
    ]) {
        let stmt = sql::parse_one(&format!("SHOW BACKUP FROM {word}")).unwrap();
        assert_round_trip(&stmt);
    }
    // Where tools put them: starrocks-br's bookkeeping tables name columns `repository`,
    // `status`, `label`; a restore may name a table `snapshot`.
    let stmt = sql::parse_one(
        "CREATE TABLE ops.backup_history (label STRING NOT NULL, status STRING, repository STRING, backup STRING, type STRING, timestamp DATETIME, partitions INT) PRIMARY KEY (label)",
    )
    .unwrap();
    assert_round_trip(&stmt);
    for sql in [
        "BACKUP DATABASE backup SNAPSHOT snapshot TO repository ON (TABLE restore, TABLE partitions)",
        "RESTORE SNAPSHOT snapshot FROM repository DATABASE location ON (TABLE view AS tables) PROPERTIES (\"backup_timestamp\" = \"2024-01-01-00-00-00\")",
        "INSERT INTO repository (repository, snapshot) VALUES ('a', 'b')",
    ] {
        assert_round_trip(&sql::parse_one(sql).unwrap());
    }
}

/// Keywords of these statements that StarRocks' grammar lists as non-reserved (`nonReserved`
/// in StarRocks.g4): plain names everywhere a name goes.
const NON_RESERVED: &[&str] = &[
    "backup",
    "cancel",
    "catalog",
    "catalogs",
    "external",
    "functions",
    "label",
    "location",
    "materialized",
    "partitions",
    "properties",
    "repositories",
    "repository",
    "restore",
    "snapshot",
    "status",
    "tables",
    "timestamp",
    "type",
    "view",
    "views",
];

#[test]
fn keywords_are_case_insensitive_and_comments_are_ignored() {
    let a = sql::parse_one("BACKUP DATABASE sr_hub SNAPSHOT s TO r ON (TABLE t PARTITION (p1))")
        .unwrap();
    let b = sql::parse_one(
        "backup /* inline */ Database sr_hub\n-- a line comment\nsnapshot s to r # another\n on(table t partition p1)",
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn names_keep_their_case_and_quoted_names_are_unescaped() {
    let stmt = sql::parse_one("BACKUP DATABASE `My``Db` SNAPSHOT Snap TO r").unwrap();
    match &stmt {
        Statement::Backup(b) => {
            assert_eq!(b.database.as_ref().unwrap().value, "My`Db");
            assert_eq!(b.snapshot.value, "Snap");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        stmt.to_string(),
        "BACKUP DATABASE `My``Db` SNAPSHOT Snap TO r"
    );
}

#[test]
fn several_statements_and_stray_semicolons() {
    let statements = sql::parse(";;SHOW REPOSITORIES;; SHOW BACKUP ;\n").unwrap();
    assert_eq!(statements.len(), 2);
    assert!(sql::parse("").unwrap().is_empty());
    assert!(sql::parse("-- only a comment\n").unwrap().is_empty());
}

#[test]
fn secrets_are_masked_in_the_serialized_tree_but_kept_in_canonical_sql() {
    let text = read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/statements/02-create-repository-s3a-access-key.sql"),
    );
    let stmt = sql::parse_one(&text).unwrap();
    let json = serde_json::to_string(&stmt).unwrap();
    let yaml = serde_yaml::to_string(&stmt).unwrap();
    for out in [&json, &yaml] {
        assert!(
            !out.contains("yyyyyyyyyyyyyyyyyyyyyyyy"),
            "secret key leaked: {out}"
        );
        assert!(
            !out.contains("XXXXXXXXXXXXXXXXX"),
            "access key leaked: {out}"
        );
        assert!(
            out.contains("s3.us-east-1.amazonaws.com"),
            "non-secret values stay: {out}"
        );
    }
    assert!(stmt.to_string().contains("yyyyyyyyyyyyyyyyyyyyyyyy"));
}

#[test]
fn every_malformed_statement_is_refused_with_a_pointed_diagnostic() {
    insta::glob!("../fixtures/malformed", "*.sql", |path| {
        let text = read(path);
        let err = match sql::parse_named(&path.file_name().unwrap().to_string_lossy(), &text) {
            Ok(statements) => panic!("{} parsed: {statements:?}", path.display()),
            Err(e) => e,
        };
        for problem in err.problems() {
            assert!(problem.span.end <= text.len(), "span past the input");
            assert!(
                !problem.message.contains("Rule::"),
                "pest internals leaked: {}",
                problem.message
            );
            assert!(
                !problem.label.contains("Rule::"),
                "pest internals leaked: {}",
                problem.label
            );
            assert!(
                !problem.code.as_str().contains("internal"),
                "an internal error for user input: {}",
                problem.message
            );
        }
        insta::assert_snapshot!(err.render_plain());
    });
}

#[test]
fn a_syntax_error_points_into_the_right_line_of_a_long_script() {
    let script = "SHOW REPOSITORIES;\nSHOW BACKUP;\nBACKUP DATABASE d SNAPSHOT s TO r ON (TABLE t PARTITION (p1,));\n";
    let err = sql::parse(script).unwrap_err();
    let span = err.problem().span;
    assert_eq!(&script[span.start..span.end], ")");
    assert_eq!(
        script[..span.start].matches('\n').count(),
        2,
        "the error is on the third line"
    );
}

#[test]
fn the_suggestions_name_the_right_keyword() {
    let help = |sql: &str| {
        sql::parse(sql)
            .unwrap_err()
            .problem()
            .help
            .clone()
            .unwrap_or_default()
    };
    assert!(help("BACKUP DATABASE d SNAPSHOT s TO r ON (TABEL t)").contains("TABLE"));
    assert!(help("RESTOER SNAPSHOT s FROM r").contains("RESTORE"));
    assert!(help("RESTORE SNAPSHOT s FROM r DATABSE d").contains("DATABASE"));
    assert!(
        help("BACKUP DATABASE d SNAPSHOT s TO r PROPERTIES (\"timout\" = \"900\")")
            .contains("\"timeout\"")
    );
}

#[test]
fn inputs_that_once_crashed_the_fuzzer_are_refused_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        match sql::parse(&text) {
            Ok(statements) => statements.iter().for_each(assert_round_trip),
            Err(e) => {
                assert!(e.problem().span.end <= text.len(), "{}", path.display());
                let _ = e.render_plain();
            }
        }
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn every_engine_fixture_statement_round_trips() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sr_hub.sql");
    let statements = parse_file(&path);
    assert!(statements.len() > 20);
    for stmt in &statements {
        assert_round_trip(stmt);
    }
}
