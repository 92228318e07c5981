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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse statements and print their syntax trees.
    Parse {
        /// Statements to parse, or `-` to read them from standard input.
        statements: Option<String>,
        /// Read the statements from a file instead.
        #[arg(short = 'f', long = "file", conflicts_with = "statements")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Parse {
            statements,
            file,
            format,
        } => {
            let (name, text) = read_input(statements, file)?;
            let parsed = srbackup::sql::parse_named(&name, &text)?;
            let out = match format {
                Format::Json => serde_json::to_string_pretty(&parsed).into_diagnostic()?,
                Format::Yaml => serde_yaml::to_string(&parsed).into_diagnostic()?,
            };
            println!("{out}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
