//! Fault injection for the tests that prove a failure writes nothing: they must fail
//! *inside* the write, not before it. `PLASTINKA_FAULT=<point>` makes the named point
//! fail and `PLASTINKA_PAUSE=<point>:<ms>` holds it (to make two processes meet).
//! Only debug builds (the test suite's) read these variables; release builds ignore them.

use anyhow::Result;

pub fn check(point: &str) -> Result<()> {
    #[cfg(debug_assertions)]
    {
        if let Ok(pause) = std::env::var("PLASTINKA_PAUSE")
            && let Some((at, ms)) = pause.split_once(':')
            && at == point
            && let Ok(ms) = ms.parse::<u64>()
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if std::env::var("PLASTINKA_FAULT").is_ok_and(|f| f == point) {
            anyhow::bail!("injected fault at «{point}» (PLASTINKA_FAULT)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
    Ok(())
}
