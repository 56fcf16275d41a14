use clap::Parser;
use plastinka::{cli::Cli, commands, error, output};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli) {
        // The reader of stdout went away after the work was done: nothing to report.
        if output::is_closed_pipe(&e) {
            std::process::exit(0);
        }
        if !e.is::<error::Exit>() {
            eprintln!("error: {e:#}");
        }
        std::process::exit(error::exit_code(&e));
    }
}
