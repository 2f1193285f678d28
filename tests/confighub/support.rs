//! Starts and stops an in-process hub on 127.0.0.1:0.

use std::path::Path;
use std::time::Duration;

use confighub_source_controller::confighub::{
    Client, ClientOptions, Space, SpaceCreate, Unit, UnitCreate,
};
use confighub_source_controller::hub::{self, Hub, HubConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "hub-test-token-5b1f0e";

pub struct TestHub {
    pub origin: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestHub {
    pub async fn start(data_dir: &Path) -> TestHub {
        Self::start_with(HubConfig::new(
            data_dir.to_path_buf(),
            vec![TOKEN.to_string()],
        ))
        .await
    }

    /// A hub with this configuration (workers, token lifetime…).
    pub async fn start_with(config: HubConfig) -> TestHub {
        let hub = Hub::open(config).expect("open hub");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hub::serve(listener, hub, async move {
            let _ = rx.await;
        }));
        TestHub {
            origin,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving and waits until the server task (and so the database handle) is gone.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("hub stops within 10s")
                .unwrap()
                .unwrap();
        }
    }

    pub fn client(&self) -> Client {
        self.client_with_token(Some(TOKEN))
    }

    pub fn client_with_token(&self, token: Option<&str>) -> Client {
        Client::new(&self.origin, token.map(str::to_string), fast_options()).unwrap()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api{path}", self.origin)
    }
}

pub fn fast_options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(20),
        max_retries: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

pub async fn space(client: &Client, slug: &str) -> Space {
    let req = SpaceCreate {
        slug: slug.into(),
        ..Default::default()
    };
    client.create_space(&req, false).await.unwrap()
}

pub async fn unit(client: &Client, space_id: &str, slug: &str) -> Unit {
    let req = UnitCreate {
        slug: slug.into(),
        toolchain_type: "Kubernetes/YAML".into(),
        ..Default::default()
    };
    client.create_unit(space_id, &req, false).await.unwrap()
}

/// A raw reqwest client for shape tests, which must not go through the typed client.
pub fn raw() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}
