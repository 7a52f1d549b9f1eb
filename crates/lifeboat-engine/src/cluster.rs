//! Talking to the API server: connecting from a kubeconfig, discovery, paginated LISTs
//! returned as raw JSON (so that no field of any object is lost or re-encoded), GETs and
//! permission checks.
//!
//! Retries of 429/503/504 answers come from kube's own retry layer (`Config::default_retry`).

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use lifeboat_types::plan::backup::ApiResource;
use serde::Deserialize;

/// Errors talking to the API server. Each message names the server or object and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig could be loaded.
    #[error(
        "cannot load a kubeconfig{}: {source}; pass --kubeconfig FILE, set KUBECONFIG, or start the dev cluster with scripts/dev-cluster.sh up",
        path.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default()
    )]
    Kubeconfig {
        /// The file, when one was named.
        path: Option<PathBuf>,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The API server did not answer.
    #[error(
        "cannot reach the API server at {server}: {source}; check that the cluster is up and --kubeconfig/--kubecontext point at it"
    )]
    Unreachable {
        /// The server URL.
        server: String,
        /// The transport error.
        #[source]
        source: kube::Error,
    },
    /// The credentials were rejected.
    #[error(
        "the API server at {server} rejected the credentials (401 Unauthorized); refresh the token or certificate in your kubeconfig"
    )]
    Unauthorized {
        /// The server URL.
        server: String,
    },
    /// RBAC forbids an operation.
    #[error("forbidden: cannot {verb} {resource}{}: {message}; grant it with a Role/ClusterRole bound to your user, or exclude the resource",
        namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    Forbidden {
        /// The verb (`list`, `get`).
        verb: String,
        /// The resource (`secrets`, `deployments.apps`).
        resource: String,
        /// The namespace, if any.
        namespace: Option<String>,
        /// The server's message.
        message: String,
    },
    /// Any other answer from the API server.
    #[error("API server error on {what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The server's answer was not what the API promises.
    #[error("unexpected answer from the API server on {what}: {source}")]
    Decode {
        /// What was being done.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// How many times a create the API server asks to retry is tried (backing off 0.25 s, 0.5 s,
/// ...: about 11 s in all).
pub const CREATE_ATTEMPTS: u32 = 10;

/// A connection to one cluster.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    server: String,
}

/// Which cluster to talk to.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file (else KUBECONFIG, ~/.kube/config, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig.
    pub context: Option<String>,
}

#[derive(Deserialize)]
struct ListHead<'a> {
    #[serde(borrow, default)]
    metadata: Option<ListMetaHead<'a>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct ListMetaHead<'a> {
    #[serde(rename = "continue", borrow, default)]
    cont: Option<std::borrow::Cow<'a, str>>,
}

/// Splits a LIST body into raw items and the continue token.
pub fn split_list(
    body: &str,
) -> Result<(Vec<&serde_json::value::RawValue>, Option<String>), serde_json::Error> {
    let head: ListHead<'_> = serde_json::from_str(body)?;
    let next = head
        .metadata
        .and_then(|m| m.cont)
        .map(|c| c.into_owned())
        .filter(|c| !c.is_empty());
    Ok((head.items.unwrap_or_default(), next))
}

fn url_base(r: &ApiResource) -> String {
    if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    }
}

/// The URL path of a resource collection (in a namespace or cluster-wide).
pub fn collection_path(r: &ApiResource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if r.namespaced => format!("{}/namespaces/{ns}/{}", url_base(r), r.plural),
        _ => format!("{}/{}", url_base(r), r.plural),
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Cluster {
    /// Connects using a kubeconfig (or the environment's usual places).
    pub async fn connect(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        Self::from_config(Self::load_config(opts).await?)
    }

    /// The kube config a kubeconfig (or the environment's usual places) describes.
    pub async fn load_config(opts: &ClusterOptions) -> Result<kube::Config, ClusterError> {
        let kc_opts = KubeConfigOptions {
            context: opts.context.clone(),
            ..Default::default()
        };
        let config = match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                    path: Some(path.clone()),
                    source: Box::new(e),
                })?;
                kube::Config::from_custom_kubeconfig(kc, &kc_opts)
                    .await
                    .map_err(|e| ClusterError::Kubeconfig {
                        path: Some(path.clone()),
                        source: Box::new(e),
                    })?
            }
            None if opts.context.is_some() => kube::Config::from_kubeconfig(&kc_opts)
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
        };
        Ok(config)
    }

    /// Connects with a ready kube config.
    pub fn from_config(mut config: kube::Config) -> Result<Self, ClusterError> {
        // Several TLS backends are linked (kube's and the object stores'); pick one for
        // the process. An error only means one was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = config.cluster_url.to_string();
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(std::time::Duration::from_secs(120));
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Unreachable {
            server: server.clone(),
            source: e,
        })?;
        Ok(Cluster { client, server })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn map_err(
        &self,
        what: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
        e: kube::Error,
    ) -> ClusterError {
        match &e {
            kube::Error::Api(s) if s.code == 401 => ClusterError::Unauthorized {
                server: self.server.clone(),
            },
            kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                namespace: ns.map(str::to_owned),
                message: s.message.clone(),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ClusterError::Unreachable {
                server: self.server.clone(),
                source: e,
            },
            _ => ClusterError::Api {
                what: what.into(),
                source: e,
            },
        }
    }

    async fn get_text(
        &self,
        path: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> Result<String, ClusterError> {
        self.send(http::Method::GET, path, None, verb, resource, ns)
            .await
    }

    /// Sends one request and returns the body; errors are mapped to name the verb,
    /// resource and namespace.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> Result<String, ClusterError> {
        let mut req = http::Request::builder().method(method).uri(path);
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let req = req.body(body).map_err(|e| ClusterError::Api {
            what: path.into(),
            source: kube::Error::HttpError(e),
        })?;
        self.client
            .request_text(req)
            .await
            .map_err(|e| self.map_err(path, verb, resource, ns, e))
    }

    /// Every served resource type, at its group's preferred version — or, for a resource
    /// only served in other versions of its group (batch/v1beta1 CronJobs on 1.20), at the
    /// first version that serves it, as client-go's ServerPreferredResources. Groups whose
    /// discovery fails (an unavailable aggregated API) are returned as warnings.
    pub async fn discover(&self) -> Result<(Vec<ApiResource>, Vec<String>), ClusterError> {
        // (group, versions in order of preference)
        let mut groups_v: Vec<(String, Vec<String>)> = vec![("".into(), vec!["v1".into()])];
        let groups: APIGroupList = {
            let text = self.get_text("/apis", "get", "discovery", None).await?;
            serde_json::from_str(&text).map_err(|source| ClusterError::Decode {
                what: "/apis".into(),
                source,
            })?
        };
        for g in groups.groups {
            let mut versions = Vec::new();
            if let Some(p) = g.preferred_version {
                versions.push(p.version);
            }
            for v in g.versions {
                if !versions.contains(&v.version) {
                    versions.push(v.version);
                }
            }
            groups_v.push((g.name, versions));
        }
        let gvs: Vec<(usize, usize, String, String)> = groups_v
            .iter()
            .enumerate()
            .flat_map(|(gi, (g, vs))| {
                vs.iter()
                    .enumerate()
                    .map(move |(vi, v)| (gi, vi, g.clone(), v.clone()))
            })
            .collect();
        let mut results: Vec<_> = stream::iter(gvs)
            .map(|(gi, vi, group, version)| async move {
                let path = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                let res = self.get_text(&path, "get", "discovery", None).await;
                (gi, vi, group, version, path, res)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.sort_by_key(|r| (r.0, r.1));
        let mut out: Vec<ApiResource> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut warnings = Vec::new();
        for (_, _, group, version, path, res) in results {
            let text = match res {
                Ok(t) => t,
                Err(e @ (ClusterError::Unreachable { .. } | ClusterError::Unauthorized { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    warnings.push(format!(
                        "discovery of {path} failed, its resources are skipped: {e}"
                    ));
                    continue;
                }
            };
            let list: APIResourceList =
                serde_json::from_str(&text).map_err(|source| ClusterError::Decode {
                    what: path.clone(),
                    source,
                })?;
            for r in list.resources {
                if r.name.contains('/') || !seen.insert((group.clone(), r.name.clone())) {
                    continue; // a subresource, or served at a preferred version already
                }
                out.push(ApiResource {
                    group: group.clone(),
                    version: version.clone(),
                    plural: r.name,
                    singular: r.singular_name,
                    kind: r.kind,
                    namespaced: r.namespaced,
                    short_names: r.short_names.unwrap_or_default(),
                    verbs: r.verbs,
                });
            }
        }
        out.sort_by_key(|a| a.group_resource());
        Ok((out, warnings))
    }

    /// The names of all namespaces.
    pub async fn namespaces(&self) -> Result<Vec<String>, ClusterError> {
        #[derive(Deserialize)]
        struct Meta {
            name: String,
        }
        #[derive(Deserialize)]
        struct Item {
            metadata: Meta,
        }
        let ns = ApiResource {
            group: "".into(),
            version: "v1".into(),
            plural: "namespaces".into(),
            singular: "namespace".into(),
            kind: "Namespace".into(),
            namespaced: false,
            short_names: vec![],
            verbs: vec![],
        };
        let mut names = Vec::new();
        let mut cont = None;
        loop {
            let page = self
                .list_page(&ns, None, None, cont.as_deref(), 500)
                .await?;
            let (items, next) = split_list(&page).map_err(|source| ClusterError::Decode {
                what: "namespaces".into(),
                source,
            })?;
            for i in items {
                let it: Item =
                    serde_json::from_str(i.get()).map_err(|source| ClusterError::Decode {
                        what: "namespaces".into(),
                        source,
                    })?;
                names.push(it.metadata.name);
            }
            match next {
                Some(n) => cont = Some(n),
                None => break,
            }
        }
        Ok(names)
    }

    /// One page of a LIST of `r` (in `namespace`, or everywhere), as the raw body;
    /// take it apart with [`split_list`].
    pub async fn list_page(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        cont: Option<&str>,
        limit: u32,
    ) -> Result<String, ClusterError> {
        let mut path = format!("{}?limit={limit}", collection_path(r, namespace));
        if let Some(s) = label_selector {
            path.push_str("&labelSelector=");
            path.push_str(&encode(s));
        }
        if let Some(c) = cont {
            path.push_str("&continue=");
            path.push_str(&encode(c));
        }
        self.get_text(&path, "list", &r.group_resource(), namespace)
            .await
    }

    /// GET one object as raw JSON; `None` when it does not exist.
    pub async fn get_raw(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        let path = format!("{}/{}", collection_path(r, namespace), encode(name));
        match self
            .get_text(&path, "get", &r.group_resource(), namespace)
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(ClusterError::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an object (POST); `Ok(false)` when it already exists.
    /// Creates an object; `false` when it already exists. A create the API server asks to
    /// retry (ServerTimeout) is tried again, up to [`CREATE_ATTEMPTS`] times.
    pub async fn create_raw(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        body: Vec<u8>,
    ) -> Result<bool, ClusterError> {
        let path = collection_path(r, namespace);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .send(
                    http::Method::POST,
                    &path,
                    Some(("application/json", body.clone())),
                    "create",
                    &r.group_resource(),
                    namespace,
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(ClusterError::Api {
                    source: kube::Error::Api(s),
                    ..
                }) if s.code == 409 && s.reason == "AlreadyExists" => return Ok(false),
                // "Try again shortly": e.g. a pod in a namespace made a moment ago, before the
                // token controller made its ServiceAccount's token (the API server answers
                // 500 ServerTimeout "retry after the token is automatically created").
                Err(ClusterError::Api {
                    source: kube::Error::Api(s),
                    ..
                }) if s.reason == "ServerTimeout" && attempt < CREATE_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(250 * u64::from(attempt)))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies a JSON merge patch to an object.
    pub async fn merge_patch(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        body: Vec<u8>,
    ) -> Result<(), ClusterError> {
        let path = format!("{}/{}", collection_path(r, namespace), encode(name));
        self.send(
            http::Method::PATCH,
            &path,
            Some(("application/merge-patch+json", body)),
            "patch",
            &r.group_resource(),
            namespace,
        )
        .await
        .map(|_| ())
    }

    /// Server-side apply of `body` (JSON) as `name` in the collection at `collection`
    /// (a REST path), owned by field manager `lifeboat`, taking over conflicting fields.
    pub async fn apply_raw(
        &self,
        collection: &str,
        name: &str,
        body: Vec<u8>,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<String, ClusterError> {
        let path = format!(
            "{collection}/{}?fieldManager=lifeboat&force=true",
            encode(name)
        );
        self.send(
            http::Method::PATCH,
            &path,
            Some(("application/apply-patch+yaml", body)),
            "patch",
            resource,
            namespace,
        )
        .await
    }

    /// Deletes the object at `collection`/`name`; `Ok(false)` when it did not exist.
    pub async fn delete_raw(
        &self,
        collection: &str,
        name: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let path = format!("{collection}/{}", encode(name));
        match self
            .send(
                http::Method::DELETE,
                &path,
                None,
                "delete",
                resource,
                namespace,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(ClusterError::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// GET of a REST path, as text.
    pub async fn get_path(&self, path: &str, resource: &str) -> Result<String, ClusterError> {
        self.send(http::Method::GET, path, None, "get", resource, None)
            .await
    }

    /// Asks the API server whether the current user may `verb` the resource `r`
    /// (in `namespace`, or cluster-wide).
    pub async fn can_i(
        &self,
        verb: &str,
        r: &ApiResource,
        namespace: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "verb": verb,
                "group": r.group,
                "resource": r.plural,
                "namespace": namespace.unwrap_or(""),
            }}
        });
        let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        let text = self
            .send(
                http::Method::POST,
                path,
                Some((
                    "application/json",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )),
                "create",
                "selfsubjectaccessreviews",
                None,
            )
            .await?;
        #[derive(Deserialize)]
        struct Status {
            #[serde(default)]
            allowed: bool,
        }
        #[derive(Deserialize)]
        struct Review {
            status: Option<Status>,
        }
        let review: Review =
            serde_json::from_str(&text).map_err(|source| ClusterError::Decode {
                what: path.into(),
                source,
            })?;
        Ok(review.status.is_some_and(|s| s.allowed))
    }

    /// The kube client, for callers that need typed access.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

/// Paths of the kubeconfig the dev cluster script writes, for "no cluster configured".
pub fn dev_cluster_kubeconfig() -> Option<PathBuf> {
    let base = std::env::var_os("LIFEBOAT_DEV_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::data_local_dir().map(|d| d.join("lifeboat/dev-clusters")))?;
    let p = base.join("dev/kubeconfig");
    p.exists().then_some(p)
}

/// Whether a kubeconfig is configured the usual ways (KUBECONFIG or ~/.kube/config).
pub fn kubeconfig_configured() -> bool {
    std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
        || dirs::home_dir().is_some_and(|h| Path::new(&h.join(".kube/config")).exists())
}

/// Fetches several resources' list permissions at once (for a preflight).
pub async fn check_list_permissions(
    cluster: &Cluster,
    checks: Vec<(ApiResource, Option<String>)>,
) -> Result<(), ClusterError> {
    stream::iter(checks)
        .map(|(r, ns)| async move {
            if cluster.can_i("list", &r, ns.as_deref()).await? {
                Ok(())
            } else {
                Err(ClusterError::Forbidden {
                    verb: "list".into(),
                    resource: r.group_resource(),
                    namespace: ns,
                    message: "the access review denied it".into(),
                })
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_list_page() {
        let body = r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"5","continue":"abc"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"data":{"k":"v\"x"}}]}"#;
        let (items, next) = split_list(body).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].get(),
            r#"{"metadata":{"name":"b"},"data":{"k":"v\"x"}}"#
        );
        let (_, none) = split_list(r#"{"metadata":{"continue":""},"items":[]}"#).unwrap();
        assert_eq!(none, None);
        let (empty, _) = split_list(r#"{"metadata":{},"items":null}"#).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("app in (a,b)"), "app%20in%20%28a%2Cb%29");
        assert_eq!(encode("eyJ2Ijoi=="), "eyJ2Ijoi%3D%3D");
    }
}
