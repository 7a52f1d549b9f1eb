//! Errors across the engine: how an error and its causes are rendered as one line.
//!
//! lifeboat's errors never print their source in their own message (thiserror
//! `#[source]` without `{source}` in `#[error]`, or `#[error(transparent)]`); whoever shows
//! an error to a person — a status field, a log line, the terminal — renders the whole
//! chain with [`chain`]. Every error type also answers whether trying again later can help
//! (`is_retryable()`: [`crate::cluster::ClusterError`], [`crate::storage::StorageError`],
//! [`crate::catalog::CatalogError`], [`crate::backup::BackupError`],
//! [`crate::restore::RestoreError`], ...).

use std::error::Error;

/// The error and its causes on one line, joined by `": "`.
///
/// Some foreign errors embed the message of their immediate source in their own (kube's
/// `ServiceError: {0}`, OpenDAL's `..., source: {0}`, kube-runtime's finalizer errors):
/// for those, that source's own message is left out and the chain goes on with its
/// causes. lifeboat's own errors never do this.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    chain_with(e, &|_| false)
}

/// [`chain`], where `embeds_source` names more error types (of the caller's crate or its
/// dependencies) whose message already carries their immediate source's message.
pub fn chain_with(
    e: &(dyn Error + 'static),
    embeds_source: &dyn Fn(&(dyn Error + 'static)) -> bool,
) -> String {
    let mut out = e.to_string();
    let mut skip_next = embeds(e) || embeds_source(e);
    let mut cur = e.source();
    while let Some(link) = cur {
        if !skip_next {
            out.push_str(": ");
            out.push_str(&link.to_string());
        }
        skip_next = embeds(link) || embeds_source(link);
        cur = link.source();
    }
    out
}

/// Foreign error types of the engine's dependencies whose message embeds their source's
/// (boxed too: a `Box<opendal::Error>` source is seen as the box).
fn embeds(e: &(dyn Error + 'static)) -> bool {
    e.is::<kube::Error>()
        || e.is::<opendal::Error>()
        || e.is::<Box<kube::Error>>()
        || e.is::<Box<opendal::Error>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("backup \"b\"")]
    struct Outer(#[source] kube::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("tcp connect error")]
    struct Connect(#[source] std::io::Error);

    #[test]
    fn each_cause_once_even_below_an_error_that_repeats_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = Outer(kube::Error::Service(Box::new(Connect(io))));
        assert_eq!(
            chain(&e),
            "backup \"b\": ServiceError: tcp connect error: Connection refused"
        );
    }

    #[test]
    fn an_opendal_error_prints_its_source_once() {
        let e = opendal::Error::new(opendal::ErrorKind::Unexpected, "send failed")
            .set_source(std::io::Error::other("reset by peer"));
        let text = chain(&e);
        assert_eq!(text.matches("reset by peer").count(), 1, "{text}");
    }

    #[test]
    fn a_plain_chain_is_joined() {
        let e = crate::catalog::CatalogError::Storage(crate::storage::StorageError::ReadOnly {
            location: "l".into(),
        });
        assert_eq!(chain(&e), e.to_string());
    }
}
