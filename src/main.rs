//! Entry point: parse the command line, start logging, call one `app` function, and map its
//! result to an exit code (0 pass, 1 ran but failed, 2 usage/config error, 130 stopped by
//! Ctrl-C). Nothing else.

use std::io::IsTerminal;
use std::process::ExitCode;

use streamprobe::app::{self, AppError, Exit};
use streamprobe::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    init_logging(&cli.command);
    let result = match app::runtime::for_command(threads(&cli.command)) {
        Ok(runtime) => app::runtime::execute(&runtime, async move { dispatch(&cli.command).await }),
        Err(e) => Err(AppError::runtime("cannot start the async runtime", e)),
    };
    match result {
        Ok(Exit::Pass) => ExitCode::SUCCESS,
        Ok(Exit::Fail) => ExitCode::from(1),
        Ok(Exit::Interrupted) => ExitCode::from(app::INTERRUPTED_EXIT_CODE),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::from(code)
        }
    }
}

/// The daemon's bursts are small and spread over time: two workers (one keeps probing while the
/// other serves a scrape or a page) and no more, measured in README "What it costs". Every
/// other command may use every CPU it is given.
fn threads(command: &Command) -> app::runtime::Threads {
    match command {
        Command::Serve(_) => app::runtime::Threads::AtMost(2),
        _ => app::runtime::Threads::PerCpu,
    }
}

async fn dispatch(command: &Command) -> Result<Exit, AppError> {
    match command {
        Command::Run(args) => app::run_once(args).await,
        Command::Check(args) => app::check(args),
        Command::Serve(args) => {
            app::serve(app::ServeOptions {
                config: args.config.clone(),
                builtin: None,
                shard: args.shard,
            })
            .await
        }
        Command::Mock(args) => app::mock(args).await,
        Command::Demo(args) => app::demo(args).await,
        Command::Compare(args) => app::compare::run(args),
    }
}

/// Logs go to stderr (journald picks them up under systemd). The daemon logs at info (one
/// line per burst); one-shot commands only warn, so their report stays readable.
/// `STREAMPROBE_LOG` overrides the level with an env-filter directive.
fn init_logging(command: &Command) {
    let (default, format) = match command {
        Command::Serve(args) => ("info", args.log_format),
        Command::Demo(_) | Command::Mock(_) => ("info", LogFormat::Text),
        _ => ("warn", LogFormat::Text),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STREAMPROBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // No colour codes when stderr is not a terminal (journald, files, pipes).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
