//! The `renkei` node as a library: configuration, the command line, the
//! wiring of the services ([`app::Application`]) and the operator's commands.
//! `main.rs` only parses arguments, sets up tracing and the runtime, and maps
//! errors to exit codes.

pub mod admin;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod demo;
pub mod evidence;
pub mod modes;

use mailbox::ErrorKind;

use crate::app::Application;
use crate::cli::{Cli, Command};
use crate::config::Settings;

/// sysexits-style codes, so scripts can tell a typo from an outage.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Invalid => 65,
        ErrorKind::NotFound => 66,
        ErrorKind::Conflict => 73,
        ErrorKind::Unauthenticated
        | ErrorKind::Locked
        | ErrorKind::Forbidden
        | ErrorKind::PasswordChangeRequired => 77,
        ErrorKind::Tampered => 65,
        ErrorKind::RateLimited | ErrorKind::Busy => 75,
        ErrorKind::Internal => 70,
    }
}

/// Runs one command of the command line to its end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::resolve(&cli.global)?;
    if matches!(cli.command, Command::Demo { .. }) && cli.global.second_factor.is_none() {
        // The demo stays two commands: a second factor is offered, not required.
        settings.auth.second_factor_required = false;
    }
    match cli.command {
        Command::Serve => {
            modes::tighten_at_start(&settings);
            let app = Application::build(settings).await?;
            app.warn_without_recovery_key().await;
            let listeners = app.bind().await?;
            println!(
                "Renkei at {} (store: {})",
                listeners.url()?,
                app.settings.store.describe()
            );
            println!(
                "TLS certificate SHA-256 fingerprint: {}",
                listeners.fingerprint
            );
            app.run(listeners, app::shutdown_signal()).await
        }
        Command::Demo { no_serve } => {
            modes::tighten_at_start(&settings);
            let app = Application::build(settings).await?;
            let tsv = demo::ensure(&app.directory, &app.threads, &app.settings.data_dir).await?;
            if no_serve {
                demo::print_accounts(&tsv);
                return Ok(());
            }
            let listeners = app.bind().await?;
            println!("Renkei demo network at {}", listeners.url()?);
            println!(
                "TLS certificate SHA-256 fingerprint: {}",
                listeners.fingerprint
            );
            demo::print_accounts(&tsv);
            app.run(listeners, app::shutdown_signal()).await
        }
        Command::Admin {
            command: cli::AdminCommand::Restore { dir, recovery_key },
        } => {
            // Before the store is opened: opening would create an empty one.
            let recovery = admin::recovery::read_recovery_files(&recovery_key)?;
            backup::restore(&settings, &dir, &recovery).await?;
            let app = Application::build(settings).await?;
            admin::operator::identify(
                &app.directory,
                cli.global.operator.as_deref(),
                app.settings.admin_operator.as_deref(),
            )
            .await?;
            app.audit
                .admin(admin::operator::actor(), "restore", None, true)
                .await;
            Ok(())
        }
        Command::Admin { command } => {
            let app = Application::build(settings).await?;
            admin::operator::identify(
                &app.directory,
                cli.global.operator.as_deref(),
                app.settings.admin_operator.as_deref(),
            )
            .await?;
            admin::operator::identify_second(&app.directory, cli.global.second_operator.as_deref())
                .await?;
            let services = admin::Services {
                settings: &app.settings,
                store: &app.store,
                audit: &app.audit,
                directory: &app.directory,
                postroom: &app.postroom,
                records: &app.records,
                notices: &app.notices,
            };
            admin::run(&services, command)
                .await
                .map_err(anyhow::Error::from)
        }
    }
}
