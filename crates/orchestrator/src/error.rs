//! The orchestrator's errors, each with a bounded label for metrics and logs.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("the run did not finish within its deadline of {0} s")]
    Deadline(u64),
    #[error("the cluster DNS service {0} has no ClusterIP")]
    NoDnsAddress(String),
    #[error("kubernetes API: no answer within {0} s")]
    NoAnswer(u64),
}

impl Error {
    /// A label with few values, for `reason` fields and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } | Error::NoAnswer(_) => "kube_api",
            Error::Deadline(_) => "deadline",
            Error::NoDnsAddress(_) => "dns_service",
        }
    }
}

/// Adds what was being done to a kube error.
pub trait KubeContext<T> {
    fn context(self, context: impl Into<String>) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn context(self, context: impl Into<String>) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { context: context.into(), source })
    }
}
