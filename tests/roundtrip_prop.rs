//! Random valid statements survive `display` → `parse` unchanged.
//!
//! The generator builds trees the validator accepts (unique names, aliases only on RESTORE, no
//! named object beside ALL of its kind), with awkward names (reserved words, spaces,
//! back-quotes) and strings full of quotes and escapes, so that quoting is exercised.

use proptest::prelude::*;
use proptest::sample::SizeRange;
use srbackup::sql::{self, *};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z_][a-z0-9_]{0,6}",
        1 => proptest::sample::select(sql::RESERVED_WORDS).prop_map(|w| w.to_lowercase()),
        1 => proptest::sample::select(NON_RESERVED).prop_map(str::to_string),
        1 => "[a-zA-Z][a-zA-Z ]{0,4}[a-z]",
        1 => "[a-z]{1,3}`[a-z]{0,3}",
        1 => "[0-9][a-z0-9]{0,3}",
    ]
}

/// Keywords StarRocks does not reserve: plain names, written unquoted by `display`.
const NON_RESERVED: &[&str] = &[
    "backup",
    "restore",
    "snapshot",
    "repository",
    "partitions",
    "location",
    "tables",
    "view",
    "views",
    "properties",
    "catalog",
    "external",
    "materialized",
    "cancel",
    "timestamp",
];

fn ident() -> impl Strategy<Value = Ident> {
    name().prop_map(Ident::new)
}

/// A label a BACKUP may create (StarRocks' rule: letters, digits, `_` and `-`), reserved words
/// and names that need back quotes included.
fn label() -> impl Strategy<Value = Ident> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,6}",
        1 => proptest::sample::select(sql::RESERVED_WORDS).prop_map(|w| w.to_lowercase()),
        1 => "[a-z][a-z0-9_-]{0,6}",
        1 => "[0-9][a-z0-9]{0,3}",
    ]
    .prop_map(Ident::new)
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:/._-]{0,12}",
        "[ -~]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just("tab\there \"q\" 'q' \\ \n".to_string()),
    ]
}

fn unique_names(size: impl Into<SizeRange>) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set(name(), size).prop_map(|s| s.into_iter().collect())
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        2000u32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        proptest::option::of(0u32..1000),
    )
        .prop_map(|(y, mo, d, h, mi, s, ms)| match ms {
            Some(ms) => format!("{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-{ms:03}"),
            None => format!("{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}"),
        })
}

fn properties(
    pool: Vec<(&'static str, BoxedStrategy<String>)>,
) -> impl Strategy<Value = Properties> {
    let n = pool.len();
    proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n)
        .prop_flat_map(move |picked| {
            picked
                .into_iter()
                .map(|i| {
                    let (key, value) = pool[i].clone();
                    (any::<bool>(), value).prop_map(move |(upper, v)| Property {
                        key: Literal::new(if upper {
                            key.to_uppercase()
                        } else {
                            key.to_string()
                        }),
                        value: Literal::new(v),
                    })
                })
                .collect::<Vec<_>>()
        })
        .prop_map(Properties)
}

fn backup_properties() -> impl Strategy<Value = Properties> {
    properties(vec![
        (
            "type",
            prop_oneof![Just("FULL".to_string()), Just("incremental".to_string())].boxed(),
        ),
        (
            "timeout",
            (600u64..1_000_000).prop_map(|t| t.to_string()).boxed(),
        ),
        (
            "compression",
            prop_oneof![
                Just("none".to_string()),
                Just("zstd".to_string()),
                (1..=22).prop_map(|l| format!("zstd:{l}"))
            ]
            .boxed(),
        ),
    ])
}

fn restore_properties() -> impl Strategy<Value = Properties> {
    properties(vec![
        ("backup_timestamp", timestamp().boxed()),
        (
            "timeout",
            (600u64..1_000_000).prop_map(|t| t.to_string()).boxed(),
        ),
        (
            "allow_load",
            prop_oneof![Just("true".to_string()), Just("false".to_string())].boxed(),
        ),
        (
            "replication_num",
            (1u32..10).prop_map(|n| n.to_string()).boxed(),
        ),
        (
            "meta_version",
            (0u32..200).prop_map(|n| n.to_string()).boxed(),
        ),
    ])
}

/// An ON list: per kind either ALL or a set of unique names; restore items may be renamed.
fn on_list(db: Option<Ident>, restore: bool) -> impl Strategy<Value = Vec<ObjectRef>> {
    let kinds = [
        ObjectKind::Tables,
        ObjectKind::MaterializedViews,
        ObjectKind::Views,
        ObjectKind::Functions,
    ];
    let per_kind = kinds.map(|kind| {
        let db = db.clone();
        prop_oneof![
            1 => Just(vec![ObjectRef::All { of: kind, alias: None, span: Span::default() }]),
            4 => (unique_names(0..3), proptest::collection::vec((any::<bool>(), any::<bool>(), unique_names(0..3)), 3))
                .prop_map(move |(names, extras)| {
                    names.into_iter().zip(extras).map(|(n, (qualify, rename, parts))| {
                        let name = QualifiedName {
                            database: db.clone().filter(|_| qualify),
                            name: Ident::new(n.clone()),
                        };
                        // `$` never appears in generated names, so renamed targets stay unique.
                        let alias = (restore && rename).then(|| Ident::new(format!("{n}$as")));
                        match kind {
                            ObjectKind::Tables => ObjectRef::Table {
                                name,
                                partitions: parts.into_iter().map(Literal::new).collect(),
                                alias,
                            },
                            ObjectKind::MaterializedViews => ObjectRef::MaterializedView { name, alias },
                            ObjectKind::Views => ObjectRef::View { name, alias },
                            ObjectKind::Functions => ObjectRef::Function { name, alias },
                        }
                    }).collect::<Vec<_>>()
                }),
        ]
    });
    per_kind
        .prop_map(|lists| lists.into_iter().flatten().collect::<Vec<_>>())
        .prop_shuffle()
}

fn catalogs(restore: bool) -> impl Strategy<Value = CatalogSelection> {
    prop_oneof![
        Just(CatalogSelection::All),
        (unique_names(1..4), any::<bool>()).prop_map(move |(names, rename)| {
            CatalogSelection::Named(
                names
                    .into_iter()
                    .map(|n| CatalogRef {
                        alias: (restore && rename).then(|| Ident::new(format!("{n}$as"))),
                        name: Ident::new(n),
                    })
                    .collect(),
            )
        }),
    ]
}

fn backup() -> impl Strategy<Value = Statement> {
    (
        any::<bool>(),
        proptest::option::of(ident()),
        proptest::option::of(catalogs(false)),
    )
        .prop_filter("v3.4 needs a database or catalogs", |(legacy, db, cats)| {
            if *legacy {
                db.is_some()
            } else {
                db.is_some() || cats.is_some()
            }
        })
        .prop_flat_map(|(legacy, db, cats)| {
            let cats = if legacy { None } else { cats };
            (
                label(),
                ident(),
                on_list(db.clone(), false),
                backup_properties(),
            )
                .prop_map(move |(snapshot, repository, on, properties)| {
                    Statement::Backup(Backup {
                        syntax: if legacy { Syntax::Legacy } else { Syntax::V3_4 },
                        database: db.clone(),
                        snapshot,
                        repository,
                        external_catalogs: cats.clone(),
                        on,
                        properties,
                        span: Span::default(),
                    })
                })
        })
}

fn restore() -> impl Strategy<Value = Statement> {
    (
        any::<bool>(),
        proptest::option::of((ident(), proptest::option::of(ident()))),
        proptest::option::of(catalogs(true)),
    )
        .prop_filter("legacy needs a database", |(legacy, db, _)| {
            !*legacy || db.is_some()
        })
        .prop_flat_map(|(legacy, db, cats)| {
            let db = db.map(|(name, alias)| DatabaseRef {
                name,
                alias: if legacy { None } else { alias },
            });
            let cats = if legacy { None } else { cats };
            let db_name = db.as_ref().map(|d| d.name.clone());
            (
                ident(),
                ident(),
                on_list(db_name, true),
                restore_properties(),
            )
                .prop_map(move |(snapshot, repository, on, properties)| {
                    Statement::Restore(Restore {
                        syntax: if legacy { Syntax::Legacy } else { Syntax::V3_4 },
                        snapshot,
                        repository,
                        external_catalogs: cats.clone(),
                        database: db.clone(),
                        on,
                        properties,
                        span: Span::default(),
                    })
                })
        })
}

fn create_repository() -> impl Strategy<Value = Statement> {
    (
        any::<bool>(),
        ident(),
        proptest::option::of(any_text()),
        any_text(),
        unique_names(0..4),
        proptest::collection::vec(any_text(), 4),
    )
        .prop_map(|(read_only, name, broker, location, keys, values)| {
            Statement::CreateRepository(CreateRepository {
                read_only,
                name,
                broker: broker.map(Literal::new),
                location: Literal::new(location),
                properties: Properties(
                    keys.into_iter()
                        .zip(values)
                        .map(|(k, v)| Property {
                            key: Literal::new(k),
                            value: Literal::new(v),
                        })
                        .collect(),
                ),
                span: Span::default(),
            })
        })
}

fn show_or_cancel() -> impl Strategy<Value = Statement> {
    let value = prop_oneof![
        any_text().prop_map(|s| Value::String(Literal::new(s))),
        (-1000i64..100_000).prop_map(|n| Value::Number(Literal::new(n.to_string()))),
    ];
    let predicate = (
        proptest::sample::select(sql::SHOW_BACKUP_COLUMNS),
        0..4usize,
        proptest::collection::vec(value, 1..4),
    )
        .prop_map(|(column, op, mut values)| {
            let op = [
                CompareOp::Eq,
                CompareOp::NotEq,
                CompareOp::Like,
                CompareOp::In,
            ][op];
            if op != CompareOp::In {
                values.truncate(1);
            }
            Predicate {
                column: Ident::new(column),
                op,
                values,
            }
        });
    let target = prop_oneof![
        Just(CancelTarget::Current),
        Just(CancelTarget::ExternalCatalog),
        ident().prop_map(CancelTarget::Database),
    ];
    prop_oneof![
        (
            proptest::option::of(ident()),
            proptest::collection::vec(predicate, 0..3)
        )
            .prop_map(|(database, filter)| Statement::ShowBackup(ShowJobs {
                database,
                filter,
                span: Span::default()
            })),
        (any::<bool>(), target).prop_map(|(backup, target)| {
            let job = CancelJob {
                target,
                span: Span::default(),
            };
            if backup {
                Statement::CancelBackup(job)
            } else {
                Statement::CancelRestore(job)
            }
        }),
        (
            ident(),
            unique_names(0..3),
            proptest::option::of(timestamp())
        )
            .prop_map(|(repository, snaps, ts)| {
                let timestamp = ts.filter(|_| snaps.len() == 1).map(Literal::new);
                Statement::ShowSnapshot(ShowSnapshot {
                    repository,
                    snapshots: snaps.into_iter().map(Literal::new).collect(),
                    timestamp,
                    span: Span::default(),
                })
            }),
        (ident(), ident(), any::<bool>()).prop_map(|(snapshot, repository, force)| {
            Statement::DropSnapshot(DropSnapshot {
                snapshot,
                repository,
                force,
                span: Span::default(),
            })
        }),
    ]
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![3 => backup(), 3 => restore(), 1 => create_repository(), 1 => show_or_cancel()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_valid_statements_round_trip(stmt in statement()) {
        let printed = stmt.to_string();
        let parsed = sql::parse_one(&printed)
            .map_err(|e| TestCaseError::fail(format!("{printed}\n{}", e.render_plain())))?;
        prop_assert_eq!(&parsed, &stmt, "printed as: {}", printed);
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn arbitrary_input_never_panics(input in "\\PC{0,200}") {
        let _ = sql::parse(&input);
    }

    #[test]
    fn truncated_seed_statements_fail_cleanly(cut in 0usize..2000) {
        let seed = include_str!("../fixtures/seed-statements.sql");
        let cut = cut.min(seed.len());
        if seed.is_char_boundary(cut)
            && let Err(e) = sql::parse(&seed[..cut])
        {
            prop_assert!(e.problem().span.end <= cut);
        }
    }
}
