//! The `srbackup` command line: wires clap commands to the library's stages and holds no logic.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use miette::{IntoDiagnostic, Result, WrapErr};

#[derive(Parser)]
#[command(
    name = "srbackup",
    version,
    about = "StarRocks-style BACKUP and RESTORE with reviewable plans"
)]
struct Cli {
    /// The cluster directory (created on first use).
    #[arg(
        long,
        global = true,
        env = "SRBACKUP_CLUSTER",
        default_value = "srbackup-cluster"
    )]
    cluster: PathBuf,
    /// Where runs against a StarRocks cluster (`--cluster starrocks://USER@HOST:PORT`) keep their
    /// journals and srbackup's index of the snapshots taken there.
    #[arg(long, global = true, env = "SRBACKUP_STATE")]
    state: Option<PathBuf>,
    /// How results are printed: `text` (the default; `table` for `sql`), or `json` for programs:
    /// one JSON document on standard output, errors included (`{"error": {...}}`), progress
    /// still on standard error. The shapes are in docs/json-output.md. (`parse` also takes
    /// `yaml`, and prints JSON by default.)
    #[arg(long, global = true, value_enum)]
    format: Option<OutFormat>,
    #[command(subcommand)]
    command: Command,
}

/// How a plan for a StarRocks cluster is cut and run (ignored for the embedded engine).
#[derive(clap::Args)]
struct NativeArgs {
    /// Target DataSize per native job (bytes, or with a unit: 64GiB, 500MB).
    #[arg(long, value_parser = parse_bytes, default_value = "64GiB")]
    batch_bytes: u64,
    /// Databases whose jobs run side by side.
    #[arg(long, default_value_t = 4)]
    max_databases: u32,
    /// Retries of a failed native job, each with a new label.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Wait before the first retry (doubled for each next one), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    retry_backoff_ms: u64,
    /// How often SHOW BACKUP / SHOW RESTORE is polled, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    poll_ms: u64,
}

fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    srbackup::fe::parse_size(text)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a size (bytes, or 64GiB, 500MB, …)"))
}

#[derive(clap::Args)]
struct ForgetArgs {
    /// The repository's name.
    repository: String,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    keep_last: Option<Keep>,
    /// Keep the newest snapshot of each of the last N hours that have one (`unlimited`: all).
    #[arg(long, value_name = "N")]
    keep_hourly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N days that have one (UTC days).
    #[arg(long, value_name = "N")]
    keep_daily: Option<Keep>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<Keep>,
    /// Only this label's snapshots.
    #[arg(long)]
    label: Option<String>,
    /// What the policy applies to: the snapshots of each database, or of each label.
    #[arg(long, value_enum, default_value_t = ForgetGroup::Database)]
    group_by: ForgetGroup,
    /// Show what would be forgotten and why each kept snapshot stays; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Save the rules given as the repository's default policy (kept in the repository, so
    /// every cluster attached to it sees it); `forget REPO` without rules then applies it.
    /// (The saved policy is rules only: --label and --group-by are not saved, so they may not
    /// be given with --save.)
    #[arg(long, conflicts_with_all = ["dry_run", "label", "group_by"])]
    save: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ForgetGroup {
    Database,
    Label,
}

use srbackup::repo::retention::Keep;

#[derive(Subcommand)]
enum Command {
    /// Parse statements and print their syntax trees.
    Parse {
        /// Statements to parse, or `-` to read them from standard input.
        statements: Option<String>,
        /// Read the statements from a file instead.
        #[arg(short = 'f', long = "file", conflicts_with = "statements")]
        file: Option<PathBuf>,
    },
    /// Show the storage configuration a CREATE REPOSITORY statement means (secrets masked),
    /// without connecting to anything.
    Repo {
        /// The CREATE REPOSITORY statement, or `-` to read it from standard input.
        statement: Option<String>,
        /// Read the statement from a file instead.
        #[arg(short = 'f', long = "file", conflicts_with = "statement")]
        file: Option<PathBuf>,
    },
    /// Plan a BACKUP or RESTORE without running it: resolve what it names, list every file and
    /// task. Writes the plan (JSON) to FILE or standard output, and a summary.
    Plan {
        /// The statement, or `-` to read it from standard input.
        statement: Option<String>,
        /// Read the statement from a file instead.
        #[arg(short = 'f', long = "file", conflicts_with = "statement")]
        file: Option<PathBuf>,
        /// Write the plan here (the summary then goes to standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        native: NativeArgs,
    },
    /// Run a saved plan as a job, in the foreground (refused if the catalog changed since).
    Apply {
        /// The plan file.
        plan: PathBuf,
    },
    /// Resume jobs interrupted by a crash (all of them, or one), from their journals.
    Resume {
        /// The job id (SHOW BACKUP / SHOW RESTORE show it).
        job: Option<i64>,
        /// StarRocks target: the run to resume (default: every interrupted run of the cluster).
        #[arg(long, conflicts_with = "job")]
        run: Option<String>,
        /// StarRocks target: instead of finishing the run, cancel what it left running on the
        /// FE and drop its temporary tables.
        #[arg(long)]
        cancel: bool,
    },
    /// Read every object of a snapshot and check its checksum.
    Verify {
        /// The repository's name.
        repository: String,
        /// The snapshot label.
        snapshot: String,
        /// The snapshot timestamp (default: the newest).
        timestamp: Option<String>,
    },
    /// Forget snapshots by a retention policy (restic's `forget` rules, per database), then
    /// delete the objects no remaining snapshot needs. --dry-run shows what would go and why
    /// each kept snapshot stays.
    Forget(ForgetArgs),
    /// A StarRocks cluster's own repository, read as files through a repository registered
    /// here (its location and credentials): list its snapshots, verify every file's MD5, or
    /// expire snapshots (never one being written; --dry-run first).
    StarrocksRepo(SrRepoArgs),
    /// Build a sample cluster, back it up to a local repository, restore it under a new
    /// name and verify every object (in ./srbackup-demo unless --dir is given).
    Demo {
        #[arg(long, default_value = "srbackup-demo")]
        dir: PathBuf,
    },
    /// Print a saved plan the way a reviewer reads it.
    Explain {
        /// The plan file.
        plan: PathBuf,
        /// Print the task graph in Graphviz DOT instead.
        #[arg(long)]
        dot: bool,
    },
    /// Serve the cluster over the MySQL protocol: connect with `mysql`/`mariadb -h127.0.0.1
    /// -P9030 -uroot`. BACKUP and RESTORE run as jobs in the server (SHOW BACKUP watches them).
    Serve {
        /// The address to listen on (a non-loopback address needs a password for every user).
        #[arg(long, default_value = "127.0.0.1:9030")]
        listen: std::net::SocketAddr,
    },
    /// Read a password from standard input and print the hash a `user.<name> = ` line of
    /// srbackup.conf takes (MySQL's mysql_native_password hash).
    Password,
    /// Run statements against the cluster (DDL, loads, SELECT, SHOW, CHECKSUM TABLE).
    Sql {
        /// Statements to run, or `-` to read them from standard input.
        statements: Option<String>,
        /// Read the statements from a file instead.
        #[arg(short = 'f', long = "file", conflicts_with = "statements")]
        file: Option<PathBuf>,
    },
    /// Restore drill: restore the newest snapshot (of LABEL) into a scratch database, compare
    /// every table's checksum with the one recorded at backup time, run every view, drop the
    /// scratch database, and report the timings and the RTO. Exit 1 if anything differs.
    Drill {
        /// The repository's name.
        repository: String,
        /// Only this label's snapshots (its newest, or --timestamp).
        label: Option<String>,
        /// The snapshot's timestamp (with LABEL).
        #[arg(long, requires = "label")]
        timestamp: Option<String>,
        /// Keep the scratch database for inspection.
        #[arg(long)]
        keep: bool,
        /// Also write the JSON report to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutFormat {
    Text,
    Table,
    Json,
    Yaml,
}

/// The statements and the name to show for them in diagnostics.
fn read_input(statements: Option<String>, file: Option<PathBuf>) -> Result<(String, String)> {
    match (statements, file) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read {}", path.display()))?;
            Ok((path.display().to_string(), text))
        }
        (Some(s), None) if s != "-" => Ok(("statement".into(), s)),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .into_diagnostic()
                .wrap_err("cannot read statements from standard input")?;
            Ok(("stdin".into(), text))
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let json = cli.format == Some(OutFormat::Json);
    let remote = cli
        .cluster
        .to_str()
        .is_some_and(srbackup::fe::ClusterUrl::is_url);
    let for_remote = matches!(
        cli.command,
        Command::Plan { .. }
            | Command::Apply { .. }
            | Command::Resume { .. }
            | Command::Explain { .. }
            | Command::Parse { .. }
            | Command::Repo { .. }
            | Command::Password
    );
    if remote && !for_remote {
        // Never a cluster directory named "starrocks:".
        return Err(miette::miette!(
            help = "against a StarRocks cluster srbackup plans, applies and resumes: \
                    srbackup --cluster starrocks://USER@HOST:PORT plan|apply|resume|explain",
            "this command works on the embedded engine's cluster directory, not on {}",
            cli.cluster.display()
        ));
    }
    match cli.command {
        Command::Parse { statements, file } => {
            let (name, text) = read_input(statements, file)?;
            let parsed = srbackup::sql::parse_named(&name, &text)?;
            let out = match cli.format {
                Some(OutFormat::Yaml) => serde_yaml::to_string(&parsed).into_diagnostic()?,
                _ => serde_json::to_string_pretty(&parsed).into_diagnostic()?,
            };
            srbackup::outln!("{out}");
            Ok(())
        }
        Command::Repo { statement, file } => {
            let (name, text) = read_input(statement, file)?;
            let mut resolved = Vec::new();
            for stmt in srbackup::sql::parse_named(&name, &text)? {
                let srbackup::sql::Statement::CreateRepository(create) = &stmt else {
                    return Err(miette::miette!(
                        "`srbackup repo` takes CREATE REPOSITORY statements only"
                    ));
                };
                let config = srbackup::repo::resolve(create)
                    .map_err(|p| srbackup::sql::SqlError::new(vec![*p], &name, &text))?;
                resolved.push(config);
            }
            srbackup::outln!(
                "{}",
                serde_json::to_string_pretty(&resolved).into_diagnostic()?
            );
            Ok(())
        }
        Command::Plan {
            statement,
            file,
            output,
            native,
        } => {
            let (name, text) = read_input(statement, file)?;
            if let Some(connector) = starrocks(&cli.cluster)? {
                let settings = srbackup::plan::native::Settings {
                    batch_bytes: native.batch_bytes,
                    max_databases: native.max_databases,
                    retries: native.retries,
                    retry_backoff_ms: native.retry_backoff_ms,
                    poll_ms: native.poll_ms,
                };
                let plan = srbackup::exec::native::plan_text(
                    &connector,
                    &state_dir(cli.state.as_deref())?,
                    settings,
                    &name,
                    &text,
                )
                .await
                .map_err(|e| srbackup::session::render(e, &name, &text))?;
                let summary = format!(
                    "{} native jobs, {} partitions, {} for StarRocks at {}",
                    plan.summary.native_jobs,
                    plan.summary.partitions,
                    srbackup::output::human_bytes(plan.summary.bytes),
                    plan.cluster
                );
                if let (true, Some(path)) = (json, &output) {
                    std::fs::write(path, plan.to_json())
                        .into_diagnostic()
                        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                    emit(&native_plan_json(&plan, path));
                    return Ok(());
                }
                return write_plan(output, &plan.to_json(), &summary);
            }
            let statements = srbackup::sql::parse_named(&name, &text)?;
            let [stmt] = statements.as_slice() else {
                return Err(miette::miette!(
                    "`srbackup plan` takes one BACKUP or RESTORE statement, not {}",
                    statements.len()
                ));
            };
            let mut session = srbackup::session::Session::open(&cli.cluster)?;
            let span = stmt.span();
            let statement = &text[span.start..span.end];
            match output {
                Some(path) => {
                    // Streamed to the file: a plan of millions of files is not held in memory.
                    let (plan, tasks) =
                        srbackup::plan::plan_to_file(session.engine(), stmt, statement, &path)
                            .await
                            .map_err(|e| srbackup::session::render(e, &name, &text))?;
                    if json {
                        emit(&plan_json(&plan, tasks, &path));
                    } else {
                        let summary = srbackup::plan::explain::summary_of(&plan, tasks);
                        said_beside(
                            &path,
                            &format!("{summary}\nplan written to {}", path.display()),
                        );
                    }
                }
                None => {
                    let plan = srbackup::plan::plan(session.engine(), stmt, statement)
                        .await
                        .map_err(|e| srbackup::session::render(e, &name, &text))?;
                    let summary = srbackup::plan::explain::summary(&plan);
                    srbackup::out!("{}", plan.to_json());
                    srbackup::errln!("{summary}");
                }
            }
            Ok(())
        }
        Command::Apply { plan } => {
            let text = std::fs::read_to_string(&plan)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read {}", plan.display()))?;
            let parsed = srbackup::exec::target::AnyPlan::from_json(&text)
                .map_err(|e| miette::miette!("{}: {e}", plan.display()))?;
            let applied = match starrocks(&cli.cluster)? {
                Some(connector) => {
                    let state = state_dir(cli.state.as_deref())?;
                    let cancel = cancel_on_signal();
                    let target = srbackup::exec::target::Target::StarRocks {
                        connector: &connector,
                        state: &state,
                        cancel: &cancel,
                    };
                    srbackup::exec::target::apply(target, &parsed).await?
                }
                None => {
                    let mut session = open_session(&cli.cluster)?;
                    let progress = srbackup::exec::progress::Console::new();
                    let time = std::env::var("SRBACKUP_SNAPSHOT_TIME").ok();
                    let target = srbackup::exec::target::Target::Embedded {
                        engine: session.engine(),
                        progress: &progress,
                        options: srbackup::exec::StartOptions {
                            snapshot_time: time.as_deref(),
                            owner: "",
                        },
                    };
                    srbackup::exec::target::apply(target, &parsed).await?
                }
            };
            match applied {
                srbackup::exec::target::Applied::Embedded(o) => finish(&o, json),
                srbackup::exec::target::Applied::StarRocks(o) => native_finish(&o, json),
            }
        }
        Command::Resume { job, run, cancel } => {
            if let Some(connector) = starrocks(&cli.cluster)? {
                let state = state_dir(cli.state.as_deref())?;
                let runs = match run {
                    Some(r) => vec![r],
                    None => srbackup::exec::native::interrupted(&state)?,
                };
                if runs.is_empty() && !json {
                    srbackup::outln!("no interrupted run to resume");
                }
                let stop = cancel_on_signal();
                if cancel {
                    stop.cancel();
                }
                let mut done = Vec::new();
                for r in runs {
                    let outcome =
                        srbackup::exec::native::resume(&connector, &state, &r, &stop).await?;
                    if json {
                        done.push(native_json(&outcome));
                    } else {
                        native_finish(&outcome, false)?;
                    }
                }
                if json {
                    let failed = done.iter().any(|r| r["outcome"] != "finished");
                    emit(&serde_json::json!({ "runs": done }));
                    if failed {
                        return Err(Reported.into());
                    }
                }
                return Ok(());
            }
            let mut session = srbackup::session::Session::open(&cli.cluster)?;
            let progress = srbackup::exec::progress::Console::new();
            let outcomes = srbackup::exec::resume(session.engine(), job, &progress).await?;
            if json {
                emit(&serde_json::json!({
                    "jobs": outcomes.iter().map(outcome_json).collect::<Vec<_>>()
                }));
                return if outcomes.iter().all(|o| o.succeeded()) {
                    Ok(())
                } else {
                    Err(Reported.into())
                };
            }
            if outcomes.is_empty() {
                srbackup::outln!("no interrupted job to resume");
            }
            for o in &outcomes {
                finish(o, false)?;
            }
            Ok(())
        }
        Command::Verify {
            repository,
            snapshot,
            timestamp,
        } => {
            let mut session = open_session(&cli.cluster)?;
            let repo = srbackup::repo::registry::open(
                session.engine().catalog(),
                &srbackup::sql::Ident::new(&repository),
            )?;
            let id = match timestamp {
                Some(ts) => srbackup::repo::SnapshotId::new(&snapshot, &ts)
                    .map_err(|e| miette::miette!("{e}"))?,
                None => repo.latest(&snapshot).await?,
            };
            let manifest = repo.read_manifest(&id).await?;
            let report = repo.verify_snapshot(&manifest, 4).await;
            if json {
                emit(&serde_json::json!({
                    "repository": repository,
                    "label": id.label,
                    "timestamp": id.timestamp,
                    "files": report.files,
                    "bytes": report.bytes,
                    "damaged": report.damaged.iter().map(|(key, reason)| {
                        serde_json::json!({"key": key, "reason": reason})
                    }).collect::<Vec<_>>(),
                    "ok": report.damaged.is_empty(),
                }));
                return if report.damaged.is_empty() {
                    Ok(())
                } else {
                    Err(Reported.into())
                };
            }
            for (key, reason) in &report.damaged {
                srbackup::outln!("DAMAGED {key}: {reason}");
            }
            let summary = format!(
                "snapshot {id}: {} files, {} checked, {} damaged",
                report.files,
                srbackup::output::human_bytes(report.bytes),
                report.damaged.len()
            );
            if report.damaged.is_empty() {
                srbackup::outln!("{summary}");
                Ok(())
            } else {
                Err(miette::miette!("{summary}"))
            }
        }
        Command::Forget(args) => forget(&cli.cluster, args, json).await,
        Command::Drill {
            repository,
            label,
            timestamp,
            keep,
            report,
        } => {
            // The report's file is opened first: a path that cannot be written fails now, not
            // after the whole drill.
            let mut report_file = match &report {
                Some(path) => Some(
                    std::fs::File::create(path)
                        .into_diagnostic()
                        .wrap_err_with(|| {
                            format!("cannot write the report to {}", path.display())
                        })?,
                ),
                None => None,
            };
            let mut session = open_session(&cli.cluster)?;
            let progress = srbackup::exec::progress::Console::new();
            let options = srbackup::exec::drill::DrillOptions {
                repository: &repository,
                label: label.as_deref(),
                timestamp: timestamp.as_deref(),
                keep,
            };
            let found = srbackup::exec::drill::run(session.engine(), &options, &progress).await?;
            let document = serde_json::to_string_pretty(&found).into_diagnostic()?;
            if let (Some(file), Some(path)) = (report_file.as_mut(), &report) {
                use std::io::Write;
                file.write_all(format!("{document}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot write the report to {}", path.display()))?;
            }
            if json {
                srbackup::outln!("{document}");
            } else {
                srbackup::outln!("{}", found.summary());
            }
            if found.ok {
                Ok(())
            } else if json {
                Err(Reported.into())
            } else {
                Err(miette::miette!("the drill found differences (see above)"))
            }
        }
        Command::StarrocksRepo(args) => starrocks_repo(&cli.cluster, args, json).await,
        Command::Demo { dir } => {
            let progress = std::sync::Arc::new(srbackup::exec::progress::Console::new());
            if !json {
                return srbackup::demo::run(&dir, progress, |line| srbackup::outln!("{line}"))
                    .await;
            }
            let mut lines = Vec::new();
            srbackup::demo::run(&dir, progress, |line| lines.push(line.to_string())).await?;
            emit(&serde_json::json!({ "dir": dir.display().to_string(), "lines": lines }));
            Ok(())
        }
        Command::Explain { plan, dot } => {
            let text = std::fs::read_to_string(&plan)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read {}", plan.display()))?;
            let parsed = srbackup::exec::target::AnyPlan::from_json(&text)
                .map_err(|e| miette::miette!("{}: {e}", plan.display()))?;
            if dot {
                let graph = parsed
                    .dot()
                    .map_err(|e| miette::miette!("{}: {e}", plan.display()))?;
                srbackup::out!("{graph}");
            } else if json {
                emit(&match &parsed {
                    srbackup::exec::target::AnyPlan::Embedded(p) => {
                        plan_json(p, p.tasks.len(), &plan)
                    }
                    srbackup::exec::target::AnyPlan::StarRocks(p) => native_plan_json(p, &plan),
                });
            } else {
                srbackup::out!("{}", parsed.explain());
            }
            Ok(())
        }
        Command::Serve { listen } => Ok(srbackup::server::serve(srbackup::server::ServeOptions {
            cluster: cli.cluster,
            listen,
        })
        .await?),
        Command::Password => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .into_diagnostic()
                .wrap_err("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(miette::miette!("the password is empty"));
            }
            let hash = srbackup::server::auth::native_hash(password);
            if json {
                emit(&serde_json::json!({ "hash": hash }));
            } else {
                srbackup::outln!("{hash}");
            }
            Ok(())
        }
        Command::Sql { statements, file } => {
            let opened = read_input(statements, file)
                .and_then(|input| Ok((input, open_session(&cli.cluster)?)));
            let ((name, text), mut session) = match opened {
                Ok(x) => x,
                // `sql` prints an array in JSON: an error before any statement is its one element.
                Err(report) if json => {
                    emit(&serde_json::json!([error_json(&report)]));
                    return Err(Reported.into());
                }
                Err(report) => return Err(report),
            };
            session.set_progress(std::sync::Arc::new(srbackup::exec::progress::Console::new()));
            session.set_snapshot_time(std::env::var("SRBACKUP_SNAPSHOT_TIME").ok());
            match cli.format {
                Some(OutFormat::Yaml) => Err(miette::miette!(
                    "`sql` prints a table or JSON (--format table|json), not YAML"
                )),
                None | Some(OutFormat::Text | OutFormat::Table) => {
                    let mut sink = srbackup::output::TableSink::default();
                    session.run_script_streaming(&name, &text, &mut sink).await
                }
                Some(OutFormat::Json) => {
                    let mut sink = srbackup::output::JsonSink::new(redacted);
                    // The array is closed even after an error, which is its last element, so
                    // what was printed stays one JSON document.
                    match session.run_script_streaming(&name, &text, &mut sink).await {
                        Ok(()) => {
                            sink.finish();
                            Ok(())
                        }
                        Err(report) => {
                            sink.fail(&error_json(&report));
                            Err(Reported.into())
                        }
                    }
                }
            }
        }
    }
}

/// `--cluster starrocks://…`: the FE to connect to, with its password.
fn starrocks(cluster: &std::path::Path) -> Result<Option<srbackup::exec::native::Connector>> {
    let Some(text) = cluster
        .to_str()
        .filter(|t| srbackup::fe::ClusterUrl::is_url(t))
    else {
        return Ok(None);
    };
    let url = srbackup::fe::ClusterUrl::parse(text)?;
    let password = srbackup::fe::password()?;
    Ok(Some(srbackup::exec::native::Connector { url, password }))
}

/// The state directory: --state, else $XDG_STATE_HOME/srbackup, else ~/.local/state/srbackup.
fn state_dir(given: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("srbackup"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| miette::miette!("no state directory: give --state DIR (or set HOME)"))?;
    Ok(PathBuf::from(home).join(".local/state/srbackup"))
}

/// Ctrl-C or SIGTERM cancels a run (its native jobs are cancelled on the FE).
fn cancel_on_signal() -> srbackup::exec::native::Cancel {
    let cancel = srbackup::exec::native::Cancel::default();
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        srbackup::errln!("cancelling: the running native jobs are being cancelled");
        c.cancel();
    });
    cancel
}

/// A run against a StarRocks cluster (docs/json-output.md, "native run").
fn native_json(o: &srbackup::exec::native::Outcome) -> serde_json::Value {
    serde_json::json!({
        "run": o.run,
        "outcome": o.outcome,
        "message": o.message,
        "statements_sent": o.jobs_sent,
        "snapshots": o.snapshots.iter().map(|(label, ts)| {
            serde_json::json!({"label": label, "timestamp": ts})
        }).collect::<Vec<_>>(),
    })
}

fn native_finish(o: &srbackup::exec::native::Outcome, json: bool) -> Result<()> {
    if json {
        emit(&native_json(o));
        return if o.outcome == "finished" {
            Ok(())
        } else {
            Err(Reported.into())
        };
    }
    for (label, ts) in &o.snapshots {
        srbackup::outln!("snapshot {label} recorded at {ts}");
    }
    let line = format!(
        "run {}: {} ({}; {} statements sent)",
        o.run, o.outcome, o.message, o.jobs_sent
    );
    if o.outcome == "finished" {
        srbackup::outln!("{line}");
        Ok(())
    } else {
        Err(miette::miette!("{line}"))
    }
}

/// What `plan -o PATH` says: on stdout, unless the plan went to something that is not a file
/// (`-o /dev/stdout` into a pipe), where the words would follow the JSON.
fn said_beside(path: &std::path::Path, words: &str) {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let stdout = std::fs::metadata("/proc/self/fd/1").ok().map(id);
    let target = std::fs::metadata(path).ok().filter(|m| m.is_file()).map(id);
    if target.is_some() && target != stdout {
        srbackup::outln!("{words}");
    } else {
        srbackup::errln!("{words}");
    }
}

fn write_plan(output: Option<PathBuf>, json: &str, summary: &str) -> Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, json)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            said_beside(
                &path,
                &format!("{summary}\nplan written to {}", path.display()),
            );
        }
        None => {
            srbackup::out!("{json}");
            srbackup::errln!("{summary}");
        }
    }
    Ok(())
}

/// Opens the cluster, pointing out jobs a crash interrupted.
/// `srbackup starrocks-repo`'s arguments.
#[derive(clap::Args, Debug)]
struct SrRepoArgs {
    /// The repository registered in this cluster (CREATE REPOSITORY … ON LOCATION the same
    /// place StarRocks writes to).
    repository: String,
    /// StarRocks' name for the repository (its `__starrocks_repository_<name>` directory).
    #[arg(long)]
    name: String,
    /// What to do.
    action: SrAction,
    /// verify/expire: this snapshot label (expire: repeatable).
    #[arg(long)]
    label: Vec<String>,
    /// expire: finished snapshots older than this many days.
    #[arg(long)]
    older_than_days: Option<u32>,
    /// expire: all finished snapshots but the newest N.
    #[arg(long)]
    keep: Option<usize>,
    /// expire: say what would go, remove nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SrAction {
    List,
    Verify,
    Expire,
}

async fn starrocks_repo(cluster: &std::path::Path, args: SrRepoArgs, json: bool) -> Result<()> {
    use srbackup::repo::starrocks;
    let SrRepoArgs {
        repository,
        name,
        action,
        label: labels,
        older_than_days,
        keep,
        dry_run,
    } = args;
    let (repository, name) = (repository.as_str(), name.as_str());
    let mut session = open_session(cluster)?;
    let repo = srbackup::repo::registry::open(
        session.engine().catalog(),
        &srbackup::sql::Ident::new(repository),
    )?;
    let size = srbackup::output::human_bytes;
    match action {
        SrAction::List => {
            let listed = starrocks::list(&repo, name).await?;
            if json {
                emit(&serde_json::json!({
                    "snapshots": listed.iter().map(|s| serde_json::json!({
                        "label": s.label,
                        "complete": s.complete(),
                        "timestamps": s.timestamps,
                        "files": s.files,
                        "bytes": s.bytes,
                        "last_modified": s.last_modified.format("%Y-%m-%d %H:%M:%S").to_string(),
                    })).collect::<Vec<_>>()
                }));
                return Ok(());
            }
            for s in listed {
                srbackup::outln!(
                    "{}\t{}\t{} files\t{}\t{}",
                    s.label,
                    if s.complete() {
                        s.timestamps.join(",")
                    } else {
                        "UNFINISHED".to_string()
                    },
                    s.files,
                    size(s.bytes),
                    s.last_modified.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        SrAction::Verify => {
            if labels.len() > 1 {
                return Err(miette::miette!(
                    "verify takes one --label (or none: every snapshot)"
                ));
            }
            let report = starrocks::verify(&repo, name, labels.first().map(String::as_str)).await?;
            if json {
                let ok = report.mismatched.is_empty() && report.unnamed.is_empty();
                emit(&serde_json::json!({
                    "checked": report.checked,
                    "mismatched": report.mismatched.iter().map(|(key, expected, actual)| {
                        serde_json::json!({"key": key, "name_md5": expected, "content_md5": actual})
                    }).collect::<Vec<_>>(),
                    "unnamed": report.unnamed,
                    "ok": ok,
                }));
                return if ok { Ok(()) } else { Err(Reported.into()) };
            }
            for (key, expected, actual) in &report.mismatched {
                srbackup::outln!(
                    "MD5 MISMATCH {key}: its name says {expected}, its content is {actual}"
                );
            }
            for key in &report.unnamed {
                srbackup::outln!("NO MD5 IN NAME {key}");
            }
            let summary = format!(
                "{} files checked, {} mismatched, {} without an MD5 in their name",
                report.checked,
                report.mismatched.len(),
                report.unnamed.len()
            );
            if report.mismatched.is_empty() && report.unnamed.is_empty() {
                srbackup::outln!("{summary}");
                Ok(())
            } else {
                Err(miette::miette!("{summary}"))
            }
        }
        SrAction::Expire => {
            if labels.is_empty() && older_than_days.is_none() && keep.is_none() {
                return Err(miette::miette!(
                    "say which snapshots: --label L, --older-than-days N or --keep N"
                ));
            }
            let policy = starrocks::ExpirePolicy {
                labels,
                older_than: older_than_days.map(|d| chrono::Duration::days(i64::from(d))),
                keep,
                unfinished_grace: chrono::Duration::days(1),
            };
            let gone = starrocks::expire(&repo, name, &policy, dry_run).await?;
            if json {
                emit(&serde_json::json!({
                    "dry_run": dry_run,
                    "snapshots": gone.iter().map(|s| serde_json::json!({
                        "label": s.label, "files": s.files, "bytes": s.bytes,
                    })).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for s in &gone {
                srbackup::outln!("{verb} {} ({} files, {})", s.label, s.files, size(s.bytes));
            }
            srbackup::outln!("{verb} {} snapshots", gone.len());
            Ok(())
        }
    }
}

/// `srbackup forget`: prints each group's decisions (newest first), then what was deleted.
async fn forget(cluster: &std::path::Path, args: ForgetArgs, json: bool) -> Result<()> {
    use srbackup::repo::retention::Policy;
    let policy = Policy {
        last: args.keep_last.unwrap_or_default(),
        hourly: args.keep_hourly.unwrap_or_default(),
        daily: args.keep_daily.unwrap_or_default(),
        weekly: args.keep_weekly.unwrap_or_default(),
        monthly: args.keep_monthly.unwrap_or_default(),
        yearly: args.keep_yearly.unwrap_or_default(),
    };
    let mut session = open_session(cluster)?;
    let repo = srbackup::repo::registry::open(
        session.engine().catalog(),
        &srbackup::sql::Ident::new(&args.repository),
    )?;
    let policy = if policy.is_empty() {
        match repo.retention_default().await? {
            Some(saved) => {
                if !json {
                    srbackup::outln!("the default policy of {}: {saved}", args.repository);
                }
                saved
            }
            None => policy,
        }
    } else {
        policy
    };
    if args.save {
        repo.save_retention_default(&policy).await?;
    }
    if args.save && !json {
        srbackup::outln!(
            "saved as the default policy of {}: {policy}",
            args.repository
        );
    }
    let group_by = match args.group_by {
        ForgetGroup::Database => srbackup::repo::gc::GroupBy::Database,
        ForgetGroup::Label => srbackup::repo::gc::GroupBy::Label,
    };
    let report = repo
        .forget(
            &policy,
            group_by,
            args.label.as_deref(),
            None,
            args.dry_run,
            &srbackup::repo::registry::lease_holder(),
        )
        .await?;
    if json {
        emit(&serde_json::json!({
            "repository": args.repository,
            "policy": policy.to_string(),
            "saved": args.save,
            "dry_run": args.dry_run,
            "groups": report.groups.iter().map(|g| serde_json::json!({
                "key": g.key,
                "snapshots": g.decisions.iter().map(|d| serde_json::json!({
                    "label": d.snapshot.label,
                    "timestamp": d.snapshot.timestamp,
                    "keep": d.keep(),
                    "reasons": d.reasons,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "unreadable": report.unreadable.iter().map(|(id, reason)| serde_json::json!({
                "label": id.label, "timestamp": id.timestamp, "reason": reason,
            })).collect::<Vec<_>>(),
            "forgotten": report.forgotten.iter().map(|id| serde_json::json!({
                "label": id.label, "timestamp": id.timestamp,
            })).collect::<Vec<_>>(),
            "gc": report.gc.as_ref().map(|gc| serde_json::json!({
                "deleted_objects": gc.deleted_objects,
                "deleted_bytes": gc.deleted_bytes,
                "kept_objects": gc.kept_objects,
                "skipped": gc.skipped,
            })),
        }));
        return Ok(());
    }
    let verb = if args.dry_run {
        "would forget"
    } else {
        "forget"
    };
    let mut going = 0;
    for group in &report.groups {
        let kept = group.decisions.iter().filter(|d| d.keep()).count();
        srbackup::outln!(
            "{}: {} snapshots, keep {kept}, {verb} {} ({policy})",
            group.key,
            group.decisions.len(),
            group.decisions.len() - kept
        );
        for d in &group.decisions {
            let (what, why) = if d.keep() {
                ("keep  ", d.reasons.join(", "))
            } else {
                going += 1;
                ("forget", String::new())
            };
            srbackup::outln!(
                "  {what}  {}  {}  {why}",
                d.snapshot.label,
                d.snapshot.timestamp
            );
        }
    }
    if let Some(label) = &args.label
        && report.groups.is_empty()
        && report.unreadable.is_empty()
    {
        srbackup::outln!("no snapshot of {} has the label {label}", args.repository);
    }
    for (id, reason) in &report.unreadable {
        srbackup::outln!("kept, unreadable: {} {}: {reason}", id.label, id.timestamp);
    }
    match &report.gc {
        None => {
            srbackup::outln!("dry run: {going} snapshots would be forgotten; nothing was deleted")
        }
        Some(gc) => match &gc.skipped {
            None => srbackup::outln!(
                "forgot {} snapshots; deleted {} unreferenced objects ({}), {} kept",
                report.forgotten.len(),
                gc.deleted_objects,
                srbackup::output::human_bytes(gc.deleted_bytes),
                gc.kept_objects
            ),
            Some(reason) => srbackup::outln!(
                "forgot {} snapshots; unreferenced objects stay until the next forget or DROP SNAPSHOT, because {reason}",
                report.forgotten.len()
            ),
        },
    }
    Ok(())
}

fn open_session(cluster: &std::path::Path) -> Result<srbackup::session::Session> {
    let mut session = srbackup::session::Session::open(cluster)?;
    for job in srbackup::exec::interrupted(session.engine())? {
        srbackup::errln!(
            "note: {} job {} ({}) was interrupted in state {}; `srbackup resume {}` finishes it, CANCEL {} undoes it",
            job.kind.keyword(),
            job.id,
            job.label,
            job.state,
            job.id,
            job.kind.keyword()
        );
    }
    Ok(session)
}

/// Prints a job's closing summary; a job that did not finish is a failure.
fn finish(outcome: &srbackup::exec::Outcome, json: bool) -> Result<()> {
    if json {
        emit(&outcome_json(outcome));
        return if outcome.succeeded() {
            Ok(())
        } else {
            Err(Reported.into())
        };
    }
    if outcome.succeeded() {
        srbackup::outln!("{}", outcome.summary());
        Ok(())
    } else {
        Err(miette::miette!("{}", outcome.summary()))
    }
}

/// A BACKUP or RESTORE job's result (docs/json-output.md, "job").
fn outcome_json(o: &srbackup::exec::Outcome) -> serde_json::Value {
    serde_json::json!({
        "job_id": o.job_id,
        "kind": o.kind.keyword(),
        "label": o.label,
        "timestamp": o.timestamp,
        "state": o.state.as_str(),
        "message": o.message,
        "objects": o.objects,
        "files": o.files,
        "bytes": o.bytes,
        "files_sent": o.files_sent,
        "bytes_sent": o.bytes_sent,
        "files_skipped": o.files_skipped,
        "bytes_skipped": o.bytes_skipped,
        "files_resumed": o.files_resumed,
        "bytes_resumed": o.bytes_resumed,
        "duration_seconds": o.elapsed.as_secs_f64(),
    })
}

/// A plan written to a file (docs/json-output.md, "plan").
fn plan_json(
    plan: &srbackup::plan::Plan,
    tasks: usize,
    path: &std::path::Path,
) -> serde_json::Value {
    serde_json::json!({
        "plan_file": path.display().to_string(),
        "kind": plan.kind.keyword(),
        "label": plan.snapshot.label,
        "timestamp": plan.snapshot.timestamp,
        "database": plan.database,
        "objects": plan.summary.objects,
        "files": plan.summary.files,
        "bytes": plan.summary.size.0,
        "already_in_repository": plan.summary.already_in_repository,
        "already_in_repository_bytes": plan.summary.already_in_repository_size.0,
        "tasks": tasks,
        "fingerprint": plan.fingerprint,
    })
}

/// A plan for a StarRocks cluster written to a file (docs/json-output.md, "plan").
fn native_plan_json(
    plan: &srbackup::plan::native::NativePlan,
    path: &std::path::Path,
) -> serde_json::Value {
    serde_json::json!({
        "plan_file": path.display().to_string(),
        "target": "starrocks",
        "cluster": plan.cluster,
        "native_jobs": plan.summary.native_jobs,
        "partitions": plan.summary.partitions,
        "bytes": plan.summary.bytes,
        "tasks": plan.tasks.len(),
    })
}

/// Prints one JSON document on standard output.
fn emit(value: &serde_json::Value) {
    srbackup::outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    );
}

/// An error whose details are already on standard output (as JSON): exit 1, print nothing more.
#[derive(Debug, thiserror::Error)]
#[error("failed (reported above)")]
struct Reported;

impl miette::Diagnostic for Reported {}

/// An error as JSON (docs/json-output.md, "error"): its code, message, help, and where in
/// the input it points (line and column counted from 1).
fn error_json(report: &miette::Report) -> serde_json::Value {
    let position = report
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| {
            let span = *label.inner();
            let place = report
                .source_code()
                .and_then(|src| src.read_span(&span, 0, 0).ok())
                .map(|c| (c.line() + 1, c.column() + 1, c.name().map(str::to_string)));
            serde_json::json!({
                "offset": span.offset(),
                "length": span.len(),
                "line": place.as_ref().map(|p| p.0),
                "column": place.as_ref().map(|p| p.1),
                "input": place.and_then(|p| p.2),
                "label": label.label(),
            })
        });
    let related: Vec<serde_json::Value> = report
        .related()
        .map(|r| {
            r.map(|d| serde_json::json!({"message": d.to_string()}))
                .collect()
        })
        .unwrap_or_default();
    // The stage's own code when miette has none (a positioned problem wrapped in a stage's
    // error carries its code in the problem).
    let code = report
        .code()
        .map(|c| c.to_string())
        .or_else(|| {
            report
                .downcast_ref::<srbackup::error::Error>()
                .map(|e| e.error_code().to_string())
        })
        .or_else(|| {
            report
                .downcast_ref::<srbackup::repo::RepoError>()
                .map(|e| e.error_code().to_string())
        })
        .or_else(|| {
            report
                .downcast_ref::<srbackup::engine::EngineError>()
                .map(|e| e.error_code().to_string())
        });
    let problem = match (
        report.downcast_ref::<srbackup::error::Error>(),
        report.downcast_ref::<srbackup::repo::RepoError>(),
    ) {
        (Some(srbackup::error::Error::At(p)), _) | (_, Some(srbackup::repo::RepoError::At(p))) => {
            Some(p)
        }
        _ => None,
    };
    let help = report
        .help()
        .map(|h| h.to_string())
        .or_else(|| problem.and_then(|p| p.help.clone()));
    // What the message stands on (an OS error under "cannot read …"), outermost first.
    let causes: Vec<String> = report.chain().skip(1).map(|c| c.to_string()).collect();
    serde_json::json!({
        "error": {
            "causes": causes,
            "code": code,
            "message": report.to_string(),
            "help": help,
            "position": position,
            "related": related,
        }
    })
}

/// A statement's text for output, credentials masked (CREATE REPOSITORY and CREATE CATALOG
/// carry them in their properties).
fn redacted(stmt: &srbackup::sql::Statement) -> String {
    srbackup::sql::mask_secrets(&stmt.to_string())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors as JSON too when JSON was asked for (clap has not parsed it: the
            // arguments are looked at as given).
            let args: Vec<String> = std::env::args().collect();
            let asked = args
                .windows(2)
                .any(|w| w[0] == "--format" && w[1] == "json")
                || args.iter().any(|a| a == "--format=json");
            if asked && e.use_stderr() {
                emit(&serde_json::json!({
                    "error": {
                        "code": "srbackup::usage",
                        "message": e.kind().to_string(),
                        "help": e.render().to_string().trim_end(),
                        "position": null,
                        "related": [],
                        "causes": [],
                    }
                }));
                return ExitCode::from(2);
            }
            e.exit();
        }
    };
    let json = cli.format == Some(OutFormat::Json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(srbackup::engine::query::STATEMENT_STACK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            srbackup::errln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Statements are planned on this thread too: give it the same stack as the workers'.
    let outcome = std::thread::Builder::new()
        .name("srbackup".into())
        .stack_size(srbackup::engine::query::STATEMENT_STACK)
        .spawn(move || runtime.block_on(run(cli)))
        .map_err(|e| miette::miette!("cannot start: {e}"))
        .and_then(|t| {
            t.join()
                .unwrap_or_else(|_| Err(miette::miette!("srbackup failed")))
        });
    match outcome {
        // Output that could not be written (a full disk behind `>`) is no success.
        Ok(()) if srbackup::output::stdout_failure().is_some() => {
            srbackup::errln!(
                "srbackup: the output could not be written: {}",
                srbackup::output::stdout_failure().unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(report) if report.downcast_ref::<Reported>().is_some() => ExitCode::FAILURE,
        Err(report) if json => {
            emit(&error_json(&report));
            ExitCode::FAILURE
        }
        Err(report) => {
            srbackup::errln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
