//! `webcall`: create a call link, join a call from the terminal, list
//! devices, or check everything before a call.
//!
//! Thin: parse flags ([`cli`]), run the subcommand, turn an error into one
//! line on stderr and a non-zero exit code.

mod check;
mod cli;
mod create;
mod join;
mod summary;

use std::process::ExitCode;

use clap::Parser;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,webrtc=warn,rtc=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(webcall_cli::screen::logs::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("webcall: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            cli::Command::Create(args) => create::run(args).await,
            cli::Command::Join(args) => join::run(args).await,
            cli::Command::Test(args) => check::run(args).await,
            cli::Command::Devices(args) => {
                let list = webcall_cli::devices::DeviceList::probe();
                if args.json {
                    println!("{}", list.to_json());
                } else {
                    print!("{}", list.to_text());
                }
                Ok(())
            }
        }
    });
    // Background tasks (a peer connection's driver) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webcall: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
