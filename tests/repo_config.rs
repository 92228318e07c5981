//! CREATE REPOSITORY → backend configuration, without connecting: every seed form, more forms,
//! and bad properties named in the diagnostic. No secret reaches any output.

use std::path::Path;

use srbackup::sql::{self, Statement};

/// Every credential value that appears in the repository fixtures.
const SECRETS: &[&str] = &[
    "yyyyyyyyyyyyyyyyy",
    "XXXXXXXXXXXXXXXXX",
    "xxxxxxxxxxxxxxxxxxxx",
    "<hdfs_password>",
    "SECRET-VALUE",
];

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "a secret reached the output ({s}):\n{text}"
        );
    }
}

fn resolve_all(path: &Path) -> Result<Vec<srbackup::repo::RepositoryConfig>, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let statements = sql::parse_named(&name, &text).map_err(|e| e.render_plain())?;
    statements
        .iter()
        .map(|s| match s {
            Statement::CreateRepository(c) => srbackup::repo::resolve(c)
                .map_err(|p| sql::SqlError::new(vec![*p], &name, &text).render_plain()),
            other => panic!("not a CREATE REPOSITORY: {}", other.span().start),
        })
        .collect()
}

#[test]
fn every_seed_repository_resolves_to_its_backend_with_secrets_masked() {
    insta::glob!(
        "../fixtures/statements",
        "0[1-6]-create-repository-*.sql",
        |path| {
            let resolved = resolve_all(path).unwrap_or_else(|e| panic!("{e}"));
            let json = serde_json::to_string_pretty(&resolved).unwrap();
            assert_no_secret(&json);
            assert_no_secret(&format!("{resolved:?}"));
            insta::assert_snapshot!(json);
        }
    );
}

#[test]
fn more_repository_forms_resolve() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repositories/ok-more-forms.sql");
    let resolved = resolve_all(&path).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string_pretty(&resolved).unwrap();
    assert_no_secret(&json);
    insta::assert_snapshot!(json);
}

#[test]
fn bad_repository_properties_are_named_in_the_diagnostic() {
    insta::glob!("../fixtures/repositories", "*.sql", |path| {
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ok-")
        {
            return;
        }
        let rendered = match resolve_all(path) {
            Ok(r) => panic!("{} resolved: {r:?}", path.display()),
            Err(e) => e,
        };
        assert_no_secret(&rendered);
        insta::assert_snapshot!(rendered);
    });
}
