//! Command-line entry points. Each subcommand parses its flags here and hands off to its module.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{api, http, telemetry};

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
    Run(RunArgs),
    /// Print every CRD this project owns as YAML.
    Crds,
    /// Run a local ConfigHub-compatible hub, or import YAML into one (`hub import`).
    Hub(crate::hub::cli::HubArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address for health probes, metrics and the REST API.
    #[arg(long, default_value = ":8080")]
    pub http_addr: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Parses Go-style listen addresses (`:8080`, `127.0.0.1:8080`) as Flux flags accept them.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse()
        .map_err(|e| format!("invalid listen address {addr:?}: {e}"))
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
        Command::Hub(args) => crate::hub::cli::main(args),
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

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let addr = parse_listen_addr(&args.http_addr).map_err(anyhow::Error::msg)?;
    let state = http::AppState::new(telemetry::Metrics::default());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving health and metrics");
    state.set_ready(true);
    http::serve(listener, http::router(state), shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM so the servers drain cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_accept_go_style_ports() {
        assert_eq!(parse_listen_addr(":8080").unwrap().port(), 8080);
        assert_eq!(
            parse_listen_addr("127.0.0.1:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert!(
            parse_listen_addr("nonsense")
                .unwrap_err()
                .contains("nonsense")
        );
    }
}
