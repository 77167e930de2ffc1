//! The `loadgen` binary: everything it does is `loadgen::cli`, so the library's
//! modules stay private to it and the compiler can flag what nothing uses.

fn main() -> std::process::ExitCode {
    loadgen::cli::main()
}
