//! The `renkei` binary: configuration, CLI and wiring.

mod admin;
mod app;
mod backup;
mod cli;
mod config;
mod demo;

use std::process::ExitCode;

/// mimalloc: per-thread heaps. With glibc's allocator a busy Inbox page spent
/// a tenth of its time in malloc and free (SQLite rows, templates, TLS records).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use mailbox::{ErrorKind, Localized};

use crate::cli::{Cli, Command};
use crate::config::Settings;

/// sysexits-style codes, so scripts can tell a typo from an outage.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Invalid => 65,
        ErrorKind::NotFound => 66,
        ErrorKind::Conflict => 73,
        ErrorKind::Unauthenticated
        | ErrorKind::Locked
        | ErrorKind::Forbidden
        | ErrorKind::PasswordChangeRequired => 77,
        ErrorKind::Tampered => 65,
        ErrorKind::RateLimited => 75,
        ErrorKind::Internal => 70,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(domain) = e.downcast_ref::<mailbox::Error>() {
                eprintln!("error: {} / {}", domain.message_en(), domain.message_ja());
                ExitCode::from(exit_code(domain.kind()))
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::resolve(&cli.global)?;
    if matches!(cli.command, Command::Demo { .. }) && cli.global.second_factor.is_none() {
        // The demo stays two commands: a second factor is offered, not required.
        settings.auth.second_factor_required = false;
    }
    match cli.command {
        Command::Serve => {
            let (directory, postroom) = app::open_services(&settings).await?;
            let server = app::Server::bind(&settings, directory, postroom).await?;
            println!(
                "Renkei at {} (store: {})",
                server.url()?,
                settings.store.describe()
            );
            println!(
                "TLS certificate SHA-256 fingerprint: {}",
                server.fingerprint
            );
            server.run(app::shutdown_signal()).await
        }
        Command::Demo { no_serve } => {
            let (directory, postroom) = app::open_services(&settings).await?;
            let tsv = demo::ensure(&directory, &settings.data_dir).await?;
            if no_serve {
                demo::print_accounts(&tsv);
                return Ok(());
            }
            let server = app::Server::bind(&settings, directory, postroom).await?;
            println!("Renkei demo network at {}", server.url()?);
            println!(
                "TLS certificate SHA-256 fingerprint: {}",
                server.fingerprint
            );
            demo::print_accounts(&tsv);
            server.run(app::shutdown_signal()).await
        }
        Command::Admin {
            command: cli::AdminCommand::Restore { dir },
        } => {
            // Before the store is opened: opening would create an empty one.
            backup::restore(&settings, &dir).await?;
            let (directory, _) = app::open_services(&settings).await?;
            directory
                .audit()
                .admin(mailbox::records::Actor::Cli, "restore", None, true)
                .await;
            Ok(())
        }
        Command::Admin { command } => {
            let (directory, postroom) = app::open_services(&settings).await?;
            let notices =
                mailbox::notify::Notices::new(directory.store().clone(), settings.notify.clone());
            let records =
                mailbox::records::Records::new(postroom.vault(), settings.records.retention_days);
            let services = admin::Services {
                settings: &settings,
                directory: &directory,
                postroom: &postroom,
                records: &records,
                notices: &notices,
            };
            admin::run(&services, command)
                .await
                .map_err(anyhow::Error::from)
        }
    }
}
