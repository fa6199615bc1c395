//! `webcall-load`: parses the command line (see [`webcall_load::Options`]),
//! makes room for thousands of sockets, runs the load and prints the
//! report. Exits 0 when every room opened and nothing sent to a present
//! participant was lost, duplicated, misrouted or reordered; 1 when
//! something was; 2 when the run could not start.

use std::process::ExitCode;

use clap::Parser;
use webcall_load::Options;

fn main() -> ExitCode {
    let options = Options::parse();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("webcall-load: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(webcall_load::run(&options)) {
        Ok(report) => {
            if options.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("webcall-load: cannot write the report as JSON: {e}"),
                }
            } else {
                print!("{report}");
            }
            if report.clean() && report.rooms_failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("webcall-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Two sockets per room, plus HTTP: raise the soft open-file limit to the
/// hard one, and say so when that is still too low.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 20_000 => eprintln!(
            "webcall-load: at most {limit} open files here: about {} rooms fit (raise the hard limit with ulimit -Hn)",
            limit.saturating_sub(100) / 2
        ),
        Ok(_) => {}
        Err(e) => eprintln!("webcall-load: cannot raise the open-file limit: {e}"),
    }
}
