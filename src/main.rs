use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = confighub_source_controller::cli::Cli::parse();
    confighub_source_controller::cli::main(cli)
}
