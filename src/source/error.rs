//! Errors that abort a reconcile and make kube-runtime retry it. Failures of ConfigHub, of the build or of
//! storage are not errors here: they become conditions and events (see `conditions`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("storage: {0}")]
    Storage(String),
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Finalizer(_) => "finalizer",
            Error::Storage(_) => "storage",
        }
    }
}
