use clap::Parser;
use plastinka::{cli::Cli, commands, error};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli) {
        if !e.is::<error::Exit>() {
            eprintln!("error: {e:#}");
        }
        std::process::exit(error::exit_code(&e));
    }
}
