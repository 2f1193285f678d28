//! `trace <kind>/<name>`: the delivery chain of one cluster object, from the ConfigHub unit (or another
//! GitOps source) through the ConfigHubRepository, ExternalArtifact and Kustomization (or HelmRelease, Helm
//! release, Argo CD Application) down to the object, with a mark per level and findings that say what is
//! wrong. See docs/trace.md.
//!
//! - [`owner`] reads who manages an object from its labels and annotations (pure);
//! - [`health`] reads an object's readiness from its status (pure);
//! - [`chain`] builds the levels and findings from plain JSON (pure), with the owner-specific levels in
//!   `flux_levels`, `helm_levels` and `argo_levels`;
//! - [`index`] turns one pass of list calls into the input of [`chain`] for every object (`--all`, pure);
//! - [`render`] prints text or JSON (pure);
//! - [`resolve`], [`gather`], [`all`] and [`artifact_read`] are the I/O edge (kube API, ConfigHub, the
//!   artifact, the drift API).

pub mod all;
mod argo_levels;
pub mod artifact_read;
pub mod chain;
#[cfg(test)]
mod chain_owner_tests;
#[cfg(test)]
mod chain_tests;
mod flux_levels;
pub mod gather;
pub mod health;
mod helm_levels;
pub mod index;
pub mod input;
pub mod model;
pub mod owner;
pub mod render;
pub mod resolve;
mod unit_levels;

use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `trace <kind>/<name> [-n <namespace>] [-o text|json]`
#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {
    /// The object: `<kind>/<name>` or `<kind> <name>` (kind as kubectl takes it: `deploy`, `deployment.apps`, `cm`, `chr`).
    #[arg(required_unless_present = "all", conflicts_with = "all", num_args = 1..=2, value_name = "KIND/NAME")]
    pub target: Vec<String>,
    /// Every object of the namespace, one line each, in one pass.
    #[arg(long)]
    pub all: bool,
    /// Namespace of the object (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Base URL of the controller's REST API (its --http-addr) for drift records; default: the controller's
    /// Service through the API server's service proxy.
    #[arg(long)]
    pub drift_url: Option<String>,
    /// Namespace of the controller's Service.
    #[arg(long, default_value = "flux-system")]
    pub controller_namespace: String,
    /// Name of the controller's Service (port `http`).
    #[arg(long, default_value = "confighub-source-controller")]
    pub controller_service: String,
    /// Namespace where Argo CD keeps its Applications.
    #[arg(long, default_value = "argocd")]
    pub argocd_namespace: String,
    /// ConfigHub origin for objects that no ConfigHubRepository delivers.
    #[arg(long, env = "CONFIGHUB_URL")]
    pub confighub_url: Option<String>,
    /// Timeout of each ConfigHub and drift API request (Flux duration, e.g. `10s`).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Splits `kind/name` or `kind name`.
pub fn parse_target(target: &[String]) -> Result<(String, String), String> {
    match target {
        [one] => match one.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok((kind.to_string(), name.to_string()))
            }
            _ => Err(format!("want <kind>/<name> or <kind> <name>, got {one:?}")),
        },
        [kind, name] if !kind.contains('/') && !name.contains('/') => {
            Ok((kind.clone(), name.clone()))
        }
        _ => Err("want <kind>/<name> or <kind> <name>".to_string()),
    }
}

async fn kube_client(args: &TraceArgs) -> anyhow::Result<(kube::Client, String)> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
        (None, None) => kube::Config::infer().await?,
    };
    let ns = config.default_namespace.clone();
    Ok((kube::Client::try_from(config)?, ns))
}

async fn setup(args: &TraceArgs) -> anyhow::Result<(kube::Client, gather::Options)> {
    let timeout: Duration =
        crate::source::duration::parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let (client, default_ns) = kube_client(args).await?;
    let namespace = args.namespace.clone().unwrap_or(default_ns);
    let opts = gather::Options {
        namespace,
        argocd_namespace: args.argocd_namespace.clone(),
        drift_url: args.drift_url.clone(),
        controller_namespace: args.controller_namespace.clone(),
        controller_service: args.controller_service.clone(),
        confighub_url: args.confighub_url.clone().filter(|u| !u.is_empty()),
        confighub_token: std::env::var("CONFIGHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        timeout,
    };
    Ok((client, opts))
}

/// Traces one object; returns the trace or an error message.
pub async fn trace(args: &TraceArgs) -> anyhow::Result<model::Trace> {
    let (kind, name) = parse_target(&args.target).map_err(anyhow::Error::msg)?;
    let (client, opts) = setup(args).await?;
    let object = gather::target(&client, &kind, &name, &opts.namespace)
        .await
        .map_err(anyhow::Error::msg)?;
    let gathered = gather::gather(&client, object, &opts).await;
    Ok(chain::build(&gathered))
}

/// Traces every object of the namespace; returns the traces and notes on what could not be listed.
pub async fn trace_all(
    args: &TraceArgs,
) -> anyhow::Result<(String, Vec<model::Trace>, Vec<String>)> {
    let (client, opts) = setup(args).await?;
    let (objects, index, notes) = all::gather_all(&client, &opts)
        .await
        .map_err(anyhow::Error::msg)?;
    let traces = objects
        .iter()
        .map(|o| chain::build(&index.gathered(o)))
        .collect();
    Ok((opts.namespace, traces, notes))
}

/// The `trace` subcommand: prints the chain; exit 0 when all is well, 2 when broken, 3 for warnings only
/// (stale, drifted, orphan, progressing), 1 when the object could not be traced at all.
pub fn main(args: TraceArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.all {
        return match runtime.block_on(trace_all(&args)) {
            Ok((namespace, traces, notes)) => {
                match args.output {
                    OutputFormat::Text => print!("{}", render::all_text(&traces, &notes)),
                    OutputFormat::Json => {
                        print!("{}", render::all_json(&namespace, &traces, &notes))
                    }
                }
                let worst = traces
                    .iter()
                    .fold(model::Mark::Ok, |m, t| m.worst(t.worst()));
                ExitCode::from(worst.exit_code())
            }
            Err(err) => {
                eprintln!("error: trace: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(trace(&args)) {
        Ok(t) => {
            match args.output {
                OutputFormat::Text => print!("{}", render::text(&t)),
                OutputFormat::Json => print!("{}", render::json(&t)),
            }
            ExitCode::from(t.exit_code())
        }
        Err(err) => {
            eprintln!("error: trace: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_both_forms() {
        let t = |v: &[&str]| parse_target(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["deploy/web"]).unwrap(), ("deploy".into(), "web".into()));
        assert_eq!(
            t(&["cm", "settings"]).unwrap(),
            ("cm".into(), "settings".into())
        );
        assert!(t(&["web"]).is_err());
        assert!(t(&["a/b/c"]).is_err());
        assert!(t(&["deploy/", ""]).is_err());
    }
}
