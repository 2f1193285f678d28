use clap::Parser;

/// mimalloc instead of glibc malloc: building an artifact allocates millions of small YAML nodes and
/// events across threads, where it measured ~15 % less CPU (see docs/benchmarks.md, section pack).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = confighub_source_controller::cli::Cli::parse();
    confighub_source_controller::cli::main(cli)
}
