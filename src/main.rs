use std::process::ExitCode;

fn main() -> ExitCode {
    hark::cli::main()
}
