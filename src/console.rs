//! Printing that never stops the program: `sweep run X | head` closes the pipe under a running
//! sweep, and a closed stdout or stderr must end the printing, not the sweep (Rust's
//! `println!` panics on a closed pipe). Every line `sweep` prints goes through these macros.

/// Like `println!`, but a closed or failing stdout is ignored.
#[macro_export]
macro_rules! say {
    () => { $crate::console::stdout_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::console::stdout_line(format_args!($($arg)*)) };
}

/// Like `print!`, but a closed or failing stdout is ignored.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => { $crate::console::stdout_raw(format_args!($($arg)*)) };
}

/// Like `eprintln!`, but a closed or failing stderr is ignored.
#[macro_export]
macro_rules! note {
    () => { $crate::console::stderr_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::console::stderr_line(format_args!($($arg)*)) };
}

use std::io::Write;

/// Writes one line to stdout, ignoring errors.
pub fn stdout_line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
}

/// Writes to stdout without a newline, ignoring errors.
pub fn stdout_raw(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.flush());
}

/// Writes one line to stderr, ignoring errors.
pub fn stderr_line(args: std::fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}
