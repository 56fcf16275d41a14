//! Results go to stdout through here, so a write error is an error the command returns
//! rather than a panic. A reader that closed the pipe early (`plastinka report | head -1`)
//! got what it wanted: from then on output is dropped, the command finishes its work and
//! ends with its own exit status (health's 1 or 2 stays 1 or 2).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// `outln!(...)?` is `println!` that returns the write error instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

pub fn line(args: std::fmt::Arguments) -> std::io::Result<()> {
    write(|out| {
        out.write_fmt(args)?;
        out.write_all(b"\n")
    })
}

pub fn bytes(bytes: &[u8]) -> std::io::Result<()> {
    write(|out| out.write_all(bytes))
}

fn write(put: impl FnOnce(&mut std::io::StdoutLock) -> std::io::Result<()>) -> std::io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match put(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}
