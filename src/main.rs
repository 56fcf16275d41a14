use clap::Parser;
use plastinka::{cli::Cli, commands, error};

fn main() {
    // A damaged spreadsheet can make the spreadsheet reader panic; that panic is caught
    // and reported as a refusal of the file, so it must not also print as a crash.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !plastinka::ingest::read::in_guarded_read() {
            report(info);
        }
    }));
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli) {
        if !e.is::<error::Exit>() {
            eprintln!("error: {e:#}");
        }
        std::process::exit(error::exit_code(&e));
    }
}
