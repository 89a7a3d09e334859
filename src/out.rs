//! Standard output for the commands. A reader that goes away early (`steward audit verify |
//! head -1`) ends the printing, not the command: `println!` would panic on the closed pipe
//! (exit 101), while the command's own outcome — and its exit status — still matter.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output unless its reader has gone; never panics.
pub fn write(text: std::fmt::Arguments<'_>, newline: bool) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = if newline {
        writeln!(out, "{text}")
    } else {
        write!(out, "{text}")
    };
    if written.and_then(|()| out.flush()).is_err() {
        // A closed pipe, or a full disk behind a redirect: nothing more can be shown.
        GONE.store(true, Ordering::Relaxed);
    }
}

/// `println!` that survives a closed pipe.
macro_rules! say {
    () => { $crate::out::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), true) };
}

/// `print!` that survives a closed pipe.
macro_rules! say_raw {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), false) };
}

pub(crate) use {say, say_raw};
