use clap::Parser;
use plastinka::ingest::workbook;
use plastinka::{cli::Cli, commands, error};

// The system allocator, on purpose: the workbook child's memory guard (setrlimit
// RLIMIT_AS, ingest::workbook) only holds when memory is mapped as it is asked for.
// mimalloc trained ~5 % faster in examples/bench_train, but it maps arenas up front and
// let a 640 MB sheet through a 256 MB limit (tests/upload_files.rs caught it).
fn main() {
    // A damaged spreadsheet can make the spreadsheet reader panic; that panic is caught
    // and reported as a refusal of the file, so it must not also print as a crash.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !workbook::in_guarded_read() {
            report(info);
        }
    }));
    // Two hidden entry points that need no settings and no database: the workbook
    // reader's child (ingest::workbook) and a DataSphere job (commands::worker).
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(first) if first == workbook::CHILD_COMMAND => {
            let path = args
                .next()
                .map(std::path::PathBuf::from)
                .unwrap_or_default();
            let memory_mb = args.next().and_then(|mb| mb.to_str()?.parse().ok());
            std::process::exit(workbook::serve(&path, memory_mb));
        }
        Some(first) if first == commands::worker::COMMAND => {
            std::process::exit(commands::worker::main(args));
        }
        _ => {}
    }
    if let Ok(me) = std::env::current_exe() {
        workbook::isolate_in(me);
    }
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli) {
        if !e.is::<error::Exit>() {
            eprintln!("error: {e:#}");
        }
        std::process::exit(error::exit_code(&e));
    }
}
