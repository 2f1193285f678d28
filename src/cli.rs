//! Command-line entry points. Each subcommand parses its flags here and hands off to its module.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{api, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "confighub-source-controller",
    version,
    about = "ConfigHub as a native Flux source"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller.
    Run(crate::run::RunArgs),
    /// Print every CRD this project owns as YAML.
    Crds,
    /// Pack local YAML files into an artifact exactly as the controller would.
    Pack(PackArgs),
    /// Run a local ConfigHub-compatible hub, or import YAML into one (`hub import`).
    Hub(crate::hub::cli::HubArgs),
    /// Show the delivery chain of a cluster object, from the ConfigHub unit (or other GitOps source) down to it.
    Trace(crate::trace::TraceArgs),
}

/// `pack <folder-or-files>... --out <file>`: one unit per `*.yaml`/`*.yml` file (slug = file stem).
#[derive(clap::Args, Debug, Clone)]
pub struct PackArgs {
    /// Unit files, or folders whose `*.yaml`/`*.yml` files are read (not recursively).
    #[arg(required = true)]
    pub inputs: Vec<std::path::PathBuf>,
    /// Where to write the tar.gz.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Space name stamped on the objects and recorded in the metadata.
    #[arg(long, default_value = "local")]
    pub space: String,
    /// Space ID stamped on the objects.
    #[arg(long, default_value = "")]
    pub space_id: String,
    /// Revision prefix.
    #[arg(long, value_enum, default_value_t = PackMode::Head)]
    pub mode: PackMode,
    /// Revision number stamped on every object.
    #[arg(long, default_value_t = 0)]
    pub revision_num: i64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackMode {
    Head,
    Released,
}

pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => match api::owned_crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: rendering CRDs: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Pack(args) => pack(args),
        Command::Hub(args) => crate::hub::cli::main(args),
        Command::Trace(args) => crate::trace::main(args),
        Command::Run(args) => {
            telemetry::init_logging(args.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("error: starting the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "controller stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn pack(args: PackArgs) -> ExitCode {
    let mode = match args.mode {
        PackMode::Head => api::RevisionMode::Head,
        PackMode::Released => api::RevisionMode::LastReleased,
    };
    let req = crate::artifact::pack::PackRequest {
        inputs: args.inputs,
        out: args.out,
        space_name: args.space,
        space_id: args.space_id,
        mode_prefix: mode.revision_prefix(),
        revision_num: args.revision_num,
    };
    match crate::artifact::pack::pack(&req) {
        Ok(artifact) => {
            println!("digest: {}", artifact.digest);
            println!("revision: {}", artifact.revision);
            println!("units: {}", artifact.unit_count);
            println!("objects: {}", artifact.object_count);
            println!("size: {}", artifact.bytes.len());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: pack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: crate::run::RunArgs) -> anyhow::Result<()> {
    crate::run::run(args).await
}
