//! The `steward` binary: parse arguments, call the library, map errors to exit codes.
//!
//! Exit codes: 0 success; 1 an operation failed; 2 bad usage; 3 a check found a problem
//! (invalid policy, a material change under `--fail-on-material`, a tampered audit log or an
//! invalid signature).

mod cases;
mod cli;
mod datasets;
mod demo;
mod out;

/// mimalloc: a request allocates and frees many small buffers (headers, JSON, rows); glibc's
/// allocator took a tenth of the server thread's time under load (docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
