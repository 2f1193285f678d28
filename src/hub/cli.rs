//! `confighub-source-controller hub [serve flags]` and `hub import …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::faults::{FaultKind, FaultUpdate};
use super::import::import_paths;
use super::{Hub, HubConfig};
use crate::confighub::{Client, ClientOptions, Token};

/// Runs a local ConfigHub-compatible hub (the default) or imports YAML into one.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HubArgs {
    #[command(subcommand)]
    pub command: Option<HubCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum HubCommand {
    /// Serve the ConfigHub API subset under /api (what `hub` alone does).
    Serve(ServeArgs),
    /// Create or update one Unit per *.yaml/*.yml file in a Space, through the API.
    Import(ImportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: String,
    /// Directory holding the hub's SQLite database (created if missing).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Bearer token clients may send (never expires).
    #[arg(long, env = "CONFIGHUB_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
    /// Worker credentials `ID=SECRET` accepted at `POST /auth/worker` (repeatable).
    #[arg(long = "worker", value_name = "ID=SECRET")]
    pub workers: Vec<WorkerArg>,
    /// Lifetime of the access tokens issued to workers, e.g. `30s` or `1h` (default: until the hub
    /// stops). An expired token gets 401.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub token_ttl: Option<std::time::Duration>,
    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Fault mode: the probability (0 to 1) that an API request gets a fault (500, 429, a reset, a
    /// truncated or garbage body, a slow answer). `GET/PUT /admin/faults` reports and changes it.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Seed of the fault sequence: the same seed gives the same faults in request order.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fault_seed: u64,
    /// How long a slow answer is held back (longer than client timeouts, to reach them).
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_delay)]
    pub fault_delay: std::time::Duration,
    /// The `Retry-After` (seconds) sent with a 429 fault.
    #[arg(long, value_name = "SECONDS", default_value_t = 1)]
    pub fault_retry_after: u64,
    /// The faults drawn from (comma-separated; default all).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_enum)]
    pub fault_kinds: Vec<FaultKind>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("fault rate {text:?} is not a number from 0 to 1")),
    }
}

fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    crate::source::duration::parse_duration(text)
}

/// `--worker ID=SECRET`; `Debug` shows the ID only.
#[derive(Clone)]
pub struct WorkerArg {
    pub id: String,
    pub secret: Token,
}

impl std::fmt::Debug for WorkerArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerArg({}=***)", self.id)
    }
}

impl std::str::FromStr for WorkerArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => Ok(WorkerArg {
                id: id.trim().to_string(),
                secret: Token::new(secret),
            }),
            _ => Err("expected ID=SECRET with both parts non-empty".into()),
        }
    }
}

fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let ttl = crate::source::duration::parse_duration(text)?;
    if ttl < std::time::Duration::from_secs(1) {
        return Err(format!("token lifetime {text:?} is shorter than 1s"));
    }
    Ok(ttl)
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Space slug; created when missing.
    #[arg(long)]
    pub space: String,
    /// ConfigHub origin (the client appends /api).
    #[arg(long, env = "CONFIGHUB_URL", default_value = "http://127.0.0.1:8090")]
    pub url: String,
    /// Bearer token.
    #[arg(long, env = "CONFIGHUB_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
    /// Folders (their *.yaml/*.yml files) or individual YAML files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn main(args: HubArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(HubCommand::Import(import)) => runtime.block_on(import_main(import)),
        Some(HubCommand::Serve(serve)) => runtime.block_on(serve_main(serve)),
        None => runtime.block_on(serve_main(args.serve)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_main(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let data_dir = args
        .data
        .ok_or_else(|| anyhow::anyhow!("--data <dir> is required"))?;
    if args.token.is_none() && args.workers.is_empty() {
        anyhow::bail!(
            "a token (--token or CONFIGHUB_TOKEN) or a worker (--worker ID=SECRET) is required"
        );
    }
    let addr = crate::process::parse_listen_addr(&args.addr).map_err(anyhow::Error::msg)?;
    let hub = Hub::open(HubConfig {
        data_dir,
        tokens: args.token.iter().map(|t| t.expose().to_string()).collect(),
        workers: args.workers.into_iter().map(|w| (w.id, w.secret)).collect(),
        token_ttl: args.token_ttl,
    })?;
    hub.set_faults(FaultUpdate {
        rate: Some(args.fault_rate),
        seed: Some(args.fault_seed),
        delay_ms: Some(args.fault_delay.as_millis() as u64),
        retry_after: Some(args.fault_retry_after),
        kinds: (!args.fault_kinds.is_empty()).then_some(args.fault_kinds),
    })
    .map_err(anyhow::Error::msg)?;
    if args.fault_rate > 0.0 {
        tracing::warn!(
            rate = args.fault_rate,
            seed = args.fault_seed,
            "fault mode: API requests get faults on purpose (GET/PUT /admin/faults)"
        );
    }
    // Read before binding, so a wrong path fails fast and names the file.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some((read_pem(cert, "--tls-cert")?, read_pem(key, "--tls-key")?))
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, scheme, "hub serving the ConfigHub API under /api");
    println!("hub listening on {scheme}://{local}");
    let shutdown = crate::process::shutdown_signal();
    match tls {
        Some((cert, key)) => super::serve_tls(listener, hub, cert, key, shutdown)
            .await
            .map_err(|e| anyhow::anyhow!("serving TLS (--tls-cert/--tls-key): {e}"))?,
        None => super::serve(listener, hub, shutdown).await?,
    }
    Ok(())
}

fn read_pem(path: &std::path::Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))
}

/// Text logs on stderr, so stdout carries only the `hub listening on …` line scripts read.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn import_main(args: ImportArgs) -> anyhow::Result<()> {
    let client = Client::new(
        &args.url,
        args.token.map(|t| t.expose().to_string()),
        ClientOptions::default(),
    )?;
    let outcomes = import_paths(&client, &args.space, &args.paths).await?;
    for outcome in outcomes {
        println!("{outcome}");
    }
    Ok(())
}
