//! A local ConfigHub-compatible hub per test, in the test's own runtime, that can be stopped and started
//! again on the same port and data (for the dead-ConfigHub tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use confighub_source_controller::confighub::{self, ClientOptions, SpaceCreate, UnitCreate};
use confighub_source_controller::hub::{self, Hub, HubConfig};

pub struct TestHub {
    pub url: String,
    pub token: String,
    /// Worker credentials accepted at `POST /auth/worker` (ID, secret).
    pub workers: Vec<(String, String)>,
    /// Lifetime of the access tokens issued to workers.
    pub token_ttl: Option<Duration>,
    /// Served over TLS with this certificate, signed by the CA `ca_pem` (PEM).
    tls: Option<(super::tls::ServerCert, String)>,
    addr: SocketAddr,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(Vec::new(), None).await
    }

    /// A hub that also accepts `workers` (ID, secret) and issues them access tokens lasting `token_ttl`.
    pub async fn start_with(
        workers: Vec<(String, String)>,
        token_ttl: Option<Duration>,
    ) -> TestHub {
        Self::start_inner(workers, token_ttl, None).await
    }

    /// A hub serving HTTPS (`https://127.0.0.1:<port>`) with `cert`, signed by the CA `ca_pem`.
    pub async fn start_tls(cert: super::tls::ServerCert, ca_pem: String) -> TestHub {
        Self::start_inner(Vec::new(), None, Some((cert, ca_pem))).await
    }

    async fn start_inner(
        workers: Vec<(String, String)>,
        token_ttl: Option<Duration>,
        tls: Option<(super::tls::ServerCert, String)>,
    ) -> TestHub {
        let dir = std::env::temp_dir().join(format!(
            "chsc-e2e-{}-hub-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut hub = TestHub {
            url: format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }),
            token: format!("test-token-{}", uuid::Uuid::new_v4().simple()),
            workers,
            token_ttl,
            tls,
            addr,
            dir,
            stop: None,
            task: None,
        };
        hub.serve(listener);
        hub
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let hub = Hub::open(HubConfig {
            data_dir: self.dir.clone(),
            tokens: vec![self.token.clone()],
            workers: self
                .workers
                .iter()
                .map(|(id, secret)| (id.clone(), confighub::Token::new(secret.clone())))
                .collect(),
            token_ttl: self.token_ttl,
        })
        .expect("opening the hub");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        let shutdown = async move {
            let _ = rx.await;
        };
        let tls = self
            .tls
            .as_ref()
            .map(|(cert, _)| (cert.cert_pem.clone(), cert.key_pem.clone()));
        self.task = Some(tokio::spawn(async move {
            let served = match tls {
                Some((cert, key)) => hub::serve_tls(listener, hub, cert, key, shutdown).await,
                None => hub::serve(listener, hub, shutdown).await,
            };
            if let Err(e) = served {
                eprintln!("test hub stopped: {e}");
            }
        }));
    }

    /// Stops serving; connections are refused until [`TestHub::restart`].
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Serves again on the same address and data.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebinding the hub's port");
        self.serve(listener);
    }

    pub fn client(&self) -> confighub::Client {
        let mut options = ClientOptions::default();
        if let Some((_, ca)) = &self.tls {
            options.transport.tls.ca_pem = Some(ca.clone().into_bytes());
        }
        confighub::Client::new(&self.url, Some(self.token.clone()), options).unwrap()
    }

    /// Creates the space (if needed) and returns its id.
    pub async fn space(&self, slug: &str) -> String {
        let space = SpaceCreate {
            slug: slug.into(),
            ..Default::default()
        };
        self.client()
            .create_space(&space, true)
            .await
            .expect("creating the space")
            .space_id
    }

    /// Creates or updates unit `slug` with `yaml`; returns the unit id.
    pub async fn put_unit(&self, space_id: &str, slug: &str, yaml: &str) -> String {
        self.put_unit_typed(space_id, slug, "Kubernetes/YAML", yaml)
            .await
    }

    pub async fn put_unit_typed(
        &self,
        space_id: &str,
        slug: &str,
        toolchain: &str,
        yaml: &str,
    ) -> String {
        let unit = UnitCreate {
            slug: slug.into(),
            toolchain_type: toolchain.into(),
            ..Default::default()
        };
        self.put_unit_with(space_id, unit, yaml).await
    }

    /// A Kubernetes/YAML unit hidden for `reason` (as ConfigHub hides its BackingUnits).
    pub async fn put_hidden_unit(
        &self,
        space_id: &str,
        slug: &str,
        reason: &str,
        yaml: &str,
    ) -> String {
        let unit = UnitCreate {
            slug: slug.into(),
            toolchain_type: "Kubernetes/YAML".into(),
            hidden_reason: reason.into(),
            ..Default::default()
        };
        self.put_unit_with(space_id, unit, yaml).await
    }

    async fn put_unit_with(&self, space_id: &str, unit: UnitCreate, yaml: &str) -> String {
        let client = self.client();
        let unit = client
            .create_unit(space_id, &unit, true)
            .await
            .expect("creating the unit");
        client
            .upload_unit_data(
                space_id,
                &unit.unit_id,
                yaml.as_bytes().to_vec(),
                None,
                Some("test edit"),
            )
            .await
            .expect("uploading unit data");
        unit.unit_id
    }

    pub async fn delete_unit(&self, space_id: &str, unit_id: &str) {
        self.client()
            .delete_unit(space_id, unit_id)
            .await
            .expect("deleting the unit");
    }

    /// The space's release Target (created and set as `ReleaseTargetID` on first use).
    pub async fn release_target(&self, space_id: &str) -> String {
        let client = self.client();
        let targets = client
            .list_targets(space_id)
            .await
            .expect("listing targets");
        if let Some(t) = targets.into_iter().find(|t| t.slug == "release") {
            return t.target_id;
        }
        let target = client
            .create_target(space_id, "release", "Kubernetes/YAML", "FluxOCI")
            .await
            .expect("creating the release target");
        client
            .patch_space(
                space_id,
                &serde_json::json!({"ReleaseTargetID": target.target_id}),
            )
            .await
            .expect("setting the release target");
        target.target_id
    }

    /// A Kubernetes/YAML unit on the space's release Target, so a release bundles it.
    pub async fn put_releasable_unit(&self, space_id: &str, slug: &str, yaml: &str) -> String {
        let unit = UnitCreate {
            slug: slug.into(),
            toolchain_type: "Kubernetes/YAML".into(),
            target_id: self.release_target(space_id).await,
            ..Default::default()
        };
        self.put_unit_with(space_id, unit, yaml).await
    }

    /// Publishes a release; the hub's error (e.g. 422 for validation errors) when refused.
    pub async fn try_release(
        &self,
        space_id: &str,
    ) -> Result<(), confighub_source_controller::confighub::Error> {
        self.client().publish_release(space_id).await.map(|_| ())
    }

    pub async fn release(&self, space_id: &str) {
        self.client()
            .publish_release(space_id)
            .await
            .expect("publishing a release");
    }
}
