//! Helpers shared by the integration tests.

pub mod bed;
pub mod kube_fixture;
pub mod kubelet;
pub mod monitoring;
pub mod netns;
