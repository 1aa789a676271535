#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    netprobe::cli::main()
}
