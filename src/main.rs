//! The `renkei` binary: parses the command line, sets up tracing and the
//! runtime, runs the command (see the library) and maps errors to exit codes.

use std::process::ExitCode;

/// mimalloc: per-thread heaps. With glibc's allocator a busy Inbox page spent
/// a tenth of its time in malloc and free (SQLite rows, templates, TLS records).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use mailbox::Localized;
use renkei::cli::Cli;

fn main() -> ExitCode {
    // Nothing this process makes is for other users: files 0600, folders 0700
    // (database, keys, blobs, backups, exports; pg_dump inherits it).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
    match runtime.block_on(renkei::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(config) = e.downcast_ref::<renkei::config::ConfigError>() {
                eprintln!("error: {config}");
                ExitCode::from(78)
            } else if let Some(domain) = e.downcast_ref::<mailbox::Error>() {
                eprintln!("error: {} / {}", domain.message_en(), domain.message_ja());
                ExitCode::from(renkei::exit_code(domain.kind()))
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
