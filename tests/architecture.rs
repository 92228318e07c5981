//! The stage order of ARCHITECTURE.md, checked against the code: a module may name (`crate::x`)
//! only itself and modules of earlier stages, so that no two modules import each other.

use std::path::{Path, PathBuf};

/// Earlier stages first. ARCHITECTURE.md states the same order.
const STAGES: &[&str] = &[
    "code", "sql", "results", "output", "config", "hashing", "process", "catalog", "engine",
    "repo", "fe", "error", "plan", "exec", "session", "server", "demo",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<name>` a file mentions (outside comments).
fn crate_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Comments are not code; a `//` inside a string ("s3://…") does not start one.
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line;
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            // `use crate::{a, b::c}` names several modules at once.
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn no_module_names_a_module_of_a_later_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let own = STAGES.iter().position(|s| *s == top).unwrap_or_else(|| {
            panic!("src/{top} is in no stage: add it to STAGES and ARCHITECTURE.md")
        });
        let text = std::fs::read_to_string(file).unwrap();
        for name in crate_references(&text) {
            let Some(other) = STAGES.iter().position(|s| *s == name) else {
                continue; // a crate-level item, not a module
            };
            if other > own {
                violations.push(format!(
                    "src/{} ({top}, stage {own}) names crate::{name} (stage {other})",
                    relative.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn architecture_md_states_the_same_stage_order() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let line = format!("Stage order: {}.", STAGES.join(" → "));
    assert!(doc.contains(&line), "ARCHITECTURE.md must say:\n{line}");
}

#[test]
fn sql_lives_only_in_the_catalog() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative.starts_with("catalog") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("rusqlite"),
            "src/{} reaches SQLite directly; add a typed method to the catalog instead",
            relative.display()
        );
    }
}
