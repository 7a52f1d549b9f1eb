//! Backup planning: from a Backup spec and what the API server serves, decide which
//! resource types are listed, where, and which objects are kept. Pure data in, data out,
//! with Velero's filter semantics.

use std::collections::BTreeSet;

use globset::{Glob, GlobMatcher};

use crate::api::selector::{Selector, SelectorError};
use crate::api::velero::BackupSpec;

/// A resource type the API server serves (from discovery, preferred version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// API group; empty for the core group.
    pub group: String,
    /// The group's preferred version.
    pub version: String,
    /// Plural resource name (`deployments`).
    pub plural: String,
    /// Singular name (`deployment`), possibly empty.
    pub singular: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Verbs the server allows.
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// `deployments.apps`, or `pods` for the core group: the name Velero's filters and
    /// tarball paths use.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `apps/v1/Deployment`: the key of Velero's resource list.
    pub fn gvk_key(&self) -> String {
        format!("{}/{}", self.api_version(), self.kind)
    }

    fn listable(&self) -> bool {
        self.verbs.iter().any(|v| v == "list")
    }

    /// Whether `name` (lower-cased, possibly `<name>.<group>`) designates this resource.
    fn answers_to(&self, name: &str) -> bool {
        let (res, group) = match name.split_once('.') {
            Some((r, g)) => (r, Some(g)),
            None => (name, None),
        };
        if let Some(g) = group {
            // A partial group such as `networking` for `networking.k8s.io` also works.
            if !(self.group == g || self.group.starts_with(&format!("{g}."))) {
                return false;
            }
        }
        self.plural == res
            || self.singular == res
            || self.kind.to_ascii_lowercase() == res
            || self.short_names.iter().any(|s| s == res)
    }
}

/// Why a backup spec cannot be planned. Each message names the offending value and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// A namespace pattern is not a valid glob.
    #[error("invalid namespace pattern {pattern:?}: {reason}")]
    BadGlob {
        /// The pattern.
        pattern: String,
        /// What the glob parser said.
        reason: String,
    },
    /// A resource name matches nothing the API server serves.
    #[error(
        "unknown resource {name:?} in {field}: the API server serves no such resource (see `kubectl api-resources`; use plural names like deployments or deployments.apps)"
    )]
    UnknownResource {
        /// The name as given.
        name: String,
        /// The flag or field it came from.
        field: &'static str,
    },
    /// A resource name matches several resources in different groups.
    #[error(
        "ambiguous resource {name:?} in {field}: it matches {candidates}; qualify it with its group"
    )]
    AmbiguousResource {
        /// The name as given.
        name: String,
        /// The flag or field it came from.
        field: &'static str,
        /// What it matches, comma separated.
        candidates: String,
    },
    /// Old-style and new-style resource filters were mixed.
    #[error(
        "include-resources, exclude-resources and include-cluster-resources cannot be combined with the scoped filters (include/exclude-cluster-scoped-resources, include/exclude-namespace-scoped-resources); use one style"
    )]
    MixedFilters,
    /// Both labelSelector and orLabelSelectors were given.
    #[error(
        "labelSelector (--selector) and orLabelSelectors (--or-selector) cannot be used together"
    )]
    BothSelectors,
    /// A selector does not parse.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// A resource is both included and excluded explicitly.
    #[error("resource {0:?} is both included and excluded")]
    IncludedAndExcluded(String),
    /// A field's value is not one it takes.
    #[error("{field}: {reason}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// What is wrong and what it takes.
        reason: String,
    },
}

/// Namespace include/exclude globs with Velero's semantics: empty or `*` includes all.
#[derive(Debug, Clone)]
pub struct NamespaceFilter {
    includes: Vec<GlobMatcher>,
    include_all: bool,
    excludes: Vec<GlobMatcher>,
    literal_includes: Option<Vec<String>>,
}

fn compile_globs(patterns: &[String]) -> Result<Vec<GlobMatcher>, PlanError> {
    patterns
        .iter()
        .map(|p| {
            if p.is_empty() || p.contains('/') {
                return Err(PlanError::BadGlob {
                    pattern: p.clone(),
                    reason: "a namespace pattern is a name or a glob like team-*".into(),
                });
            }
            Glob::new(p)
                .map(|g| g.compile_matcher())
                .map_err(|e| PlanError::BadGlob {
                    pattern: p.clone(),
                    reason: e.kind().to_string(),
                })
        })
        .collect()
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

impl NamespaceFilter {
    /// Builds the filter from `includedNamespaces` and `excludedNamespaces`.
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self, PlanError> {
        let include_all = includes.is_empty() || includes.iter().any(|p| p == "*");
        let literal_includes =
            (!include_all && !includes.iter().any(|p| is_glob(p))).then(|| includes.to_vec());
        Ok(NamespaceFilter {
            includes: if include_all {
                vec![]
            } else {
                compile_globs(includes)?
            },
            include_all,
            excludes: compile_globs(excludes)?,
            literal_includes,
        })
    }

    /// Whether namespace `ns` is in the backup.
    pub fn includes(&self, ns: &str) -> bool {
        if self.excludes.iter().any(|g| g.is_match(ns)) {
            return false;
        }
        self.include_all || self.includes.iter().any(|g| g.is_match(ns))
    }

    /// Whether every namespace is in (Velero's "IncludeEverything").
    pub fn includes_everything(&self) -> bool {
        self.include_all && self.excludes.is_empty()
    }

    /// The namespaces named literally (no globs), when that is how they were given.
    pub fn literal_includes(&self) -> Option<&[String]> {
        self.literal_includes.as_deref()
    }
}

/// Resource include/exclude sets, resolved to group-resource names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ResourceFilter {
    include_all: bool,
    includes: BTreeSet<String>,
    excludes: BTreeSet<String>,
}

impl ResourceFilter {
    fn should_include(&self, gr: &str) -> bool {
        !self.excludes.contains(gr) && (self.include_all || self.includes.contains(gr))
    }
}

fn resolve(
    names: &[String],
    field: &'static str,
    served: &[ApiResource],
) -> Result<(bool, BTreeSet<String>), PlanError> {
    let mut all = false;
    let mut out = BTreeSet::new();
    for raw in names {
        let name = raw.trim().to_ascii_lowercase();
        if name == "*" {
            all = true;
            continue;
        }
        let hits: BTreeSet<String> = served
            .iter()
            .filter(|r| r.answers_to(&name))
            .map(ApiResource::group_resource)
            .collect();
        match hits.len() {
            0 => {
                return Err(PlanError::UnknownResource {
                    name: raw.clone(),
                    field,
                });
            }
            1 => out.extend(hits),
            _ => {
                // A bare plural served by the core group wins, as with kubectl.
                let exact: Vec<&ApiResource> = served
                    .iter()
                    .filter(|r| r.plural == name && r.group.is_empty())
                    .collect();
                if exact.len() == 1 {
                    out.insert(exact[0].group_resource());
                } else {
                    return Err(PlanError::AmbiguousResource {
                        name: raw.clone(),
                        field,
                        candidates: hits.into_iter().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
    }
    Ok((all, out))
}

/// [`resolve`] for an exclude list: a name the cluster does not serve excludes nothing
/// and is a warning, not an error (Velero ignores it too; a script that excludes, say,
/// `volumesnapshots` runs on clusters without that API). An ambiguous name is still an
/// error: it may be meant to exclude something that is there.
fn resolve_excludes(
    names: &[String],
    field: &'static str,
    served: &[ApiResource],
    warnings: &mut Vec<String>,
) -> Result<(bool, BTreeSet<String>), PlanError> {
    let mut known = Vec::new();
    for n in names {
        match resolve(std::slice::from_ref(n), field, served) {
            Err(PlanError::UnknownResource { .. }) => warnings.push(format!(
                "{field}: {n:?} names no resource the cluster serves; there is nothing to exclude"
            )),
            _ => known.push(n.clone()),
        }
    }
    resolve(&known, field, served)
}

/// The resources (group-resource names) an `orderedResources` key orders, and the warning
/// for the backup when the key is ignored or read in a way Velero does not read it.
///
/// Velero looks a key up by the plural resource name only (`pods`, `persistentvolumes`)
/// and silently ignores any other key. lifeboat never fails a backup for a key (issue 13,
/// item 3), and says what it did with one Velero would not match:
/// - a plural resource name: ordered, no warning (as Velero);
/// - another name `includedResources` takes (`Secret`, `cm`, `deployments.apps`): ordered,
///   with a warning that Velero ignores the key and which plural to write;
/// - `<apiVersion>/<Kind>` (`v1/Secret`, `apps/v1/Deployment`: the keys of a backup's
///   resource list; a DR guide writes them): the resource of that group and kind, with the
///   same warning;
/// - a key naming nothing the cluster serves, or several resources: ignored, with a warning.
pub fn ordered_key(key: &str, served: &[ApiResource]) -> (Vec<String>, Option<String>) {
    let by_name = match resolve(&[key.to_owned()], "orderedResources", served) {
        Ok((_, grs)) => Ok(grs.into_iter().collect::<Vec<_>>()),
        Err(e) => Err(e),
    };
    let hits = match by_name {
        Ok(grs) => grs,
        Err(PlanError::AmbiguousResource { candidates, .. }) => {
            return (
                vec![],
                Some(format!(
                    "orderedResources key {key:?} matches {candidates}; it is ignored: write the plural with its group (deployments.apps)"
                )),
            );
        }
        Err(_) => match key.rsplit_once('/') {
            // `v1/Secret`, `apps/v1/Deployment`: group and kind; the version may be any.
            Some((api_version, kind)) => {
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                served
                    .iter()
                    .filter(|r| r.group == group && r.kind.eq_ignore_ascii_case(kind))
                    .map(ApiResource::group_resource)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            }
            None => vec![],
        },
    };
    if hits.is_empty() {
        return (
            vec![],
            Some(format!(
                "orderedResources key {key:?} names no resource the cluster serves; it is ignored (keys are plural resource names such as pods or persistentvolumes)"
            )),
        );
    }
    let plurals: BTreeSet<&str> = served
        .iter()
        .filter(|r| hits.contains(&r.group_resource()))
        .map(|r| r.plural.as_str())
        .collect();
    let warning = (!plurals.contains(key)).then(|| {
        format!(
            "orderedResources key {key:?} is read as {}; Velero matches only plural resource names and would ignore it: write {}",
            hits.join(", "),
            plurals.into_iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(" or ")
        )
    });
    (hits, warning)
}

/// How a resource type is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// One LIST over the whole cluster (cluster-scoped resources).
    Cluster,
    /// One LIST over all namespaces, objects filtered by namespace afterwards.
    AllNamespaces,
    /// One LIST per namespace.
    Namespaces(Vec<String>),
    /// One LIST over all namespaces keeping only the objects of these namespaces. The
    /// plan never makes it: a backup's preflight turns a [`ListScope::Namespaces`] into it
    /// when RBAC allows and [`crate::rules::namespaced_list`] chooses it.
    AllNamespacesKeeping(BTreeSet<String>),
}

impl ListScope {
    /// The scope a backup lists with: [`ListScope::Namespaces`] as
    /// [`crate::rules::namespaced_list::namespaced_list`] decides for a cluster of
    /// `in_cluster` namespaces (`cluster_wide_allowed`: what the access review answered for
    /// a cluster-wide LIST); every other scope as it is.
    pub fn chosen(self, in_cluster: usize, cluster_wide_allowed: bool) -> ListScope {
        use crate::rules::namespaced_list::{NamespacedList, namespaced_list};
        match self {
            ListScope::Namespaces(list)
                if namespaced_list(list.len(), in_cluster, cluster_wide_allowed)
                    == NamespacedList::ClusterWide =>
            {
                ListScope::AllNamespacesKeeping(list.into_iter().collect())
            }
            other => other,
        }
    }
}

/// One resource type to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedResource {
    /// The served resource.
    pub resource: ApiResource,
    /// How it is listed.
    pub scope: ListScope,
    /// For `namespaces`: keep only namespaces the namespace filter includes.
    pub filter_names_as_namespaces: bool,
    /// Objects (`ns/name` or `name`) to write first, in this order.
    pub ordered: Vec<String>,
}

/// Items that only go in because something else did (Velero's auto cluster resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dependents {
    /// Back up the CRD of each custom resource type that had items.
    pub crds_of_custom_resources: bool,
    /// Back up the PersistentVolume bound to each PVC that was backed up.
    pub pvs_of_claims: bool,
}

/// The complete plan of a backup.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    /// Resource types in the order they are written.
    pub resources: Vec<PlannedResource>,
    /// The namespace filter.
    pub namespaces: NamespaceFilter,
    /// Objects must match one of these (all when empty).
    pub selectors: Vec<Selector>,
    /// The selector that can be sent to the API server (with a single selector).
    pub server_selector: Option<String>,
    /// Items included because of others.
    pub dependents: Dependents,
    /// Namespaces named in the spec that do not exist (a warning each).
    pub missing_namespaces: Vec<String>,
    /// Served resources the API server does not allow listing (`tokenreviews`,
    /// `bindings`): never backed up, named in one line of the backup's log.
    pub not_listable: Vec<String>,
    /// What the spec asks that is ignored or read differently from Velero, for the
    /// backup's warnings (`orderedResources` keys and items; see [`ordered_key`]).
    pub warnings: Vec<String>,
}

impl BackupPlan {
    /// Whether an object with these labels is kept.
    pub fn selects(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(|s| s.matches(labels))
    }
}

/// Resources never backed up: lifeboat's and Velero's own bookkeeping of backups in
/// progress would otherwise end up inside the backup.
const NEVER_BACKED_UP: &[&str] = &[];

/// Plans a backup of `spec` against the `served` resources and the `existing` namespaces.
pub fn plan_backup(
    spec: &BackupSpec,
    served: &[ApiResource],
    existing_namespaces: &[String],
) -> Result<BackupPlan, PlanError> {
    let old_style = !spec.included_resources.is_empty()
        || !spec.excluded_resources.is_empty()
        || spec.include_cluster_resources.is_some();
    let new_style = !spec.included_cluster_scoped_resources.is_empty()
        || !spec.excluded_cluster_scoped_resources.is_empty()
        || !spec.included_namespace_scoped_resources.is_empty()
        || !spec.excluded_namespace_scoped_resources.is_empty();
    if old_style && new_style {
        return Err(PlanError::MixedFilters);
    }
    if spec.label_selector.is_some() && !spec.or_label_selectors.is_empty() {
        return Err(PlanError::BothSelectors);
    }
    let namespaces = NamespaceFilter::new(&spec.included_namespaces, &spec.excluded_namespaces)?;

    let listable: Vec<ApiResource> = served
        .iter()
        .filter(|r| r.listable() && !NEVER_BACKED_UP.contains(&r.group_resource().as_str()))
        .cloned()
        .collect();

    let mut warnings = Vec::new();
    // Which cluster-scoped and namespaced types are in.
    let (cluster_filter, ns_filter, cluster_mode) = if new_style {
        let (ci_all, ci) = resolve(
            &spec.included_cluster_scoped_resources,
            "includedClusterScopedResources",
            &listable,
        )?;
        let (_, ce) = resolve_excludes(
            &spec.excluded_cluster_scoped_resources,
            "excludedClusterScopedResources",
            &listable,
            &mut warnings,
        )?;
        let (ni_all, ni) = resolve(
            &spec.included_namespace_scoped_resources,
            "includedNamespaceScopedResources",
            &listable,
        )?;
        let (_, ne) = resolve_excludes(
            &spec.excluded_namespace_scoped_resources,
            "excludedNamespaceScopedResources",
            &listable,
            &mut warnings,
        )?;
        (
            ResourceFilter {
                include_all: ci_all,
                includes: ci,
                excludes: ce,
            },
            ResourceFilter {
                include_all: ni_all || spec.included_namespace_scoped_resources.is_empty(),
                includes: ni,
                excludes: ne,
            },
            // With scoped filters, cluster resources are exactly those listed.
            Some(true),
        )
    } else {
        let (all, inc) = resolve(&spec.included_resources, "includedResources", &listable)?;
        let (_, exc) = resolve_excludes(
            &spec.excluded_resources,
            "excludedResources",
            &listable,
            &mut warnings,
        )?;
        if let Some(both) = inc.intersection(&exc).next() {
            return Err(PlanError::IncludedAndExcluded(both.clone()));
        }
        let f = ResourceFilter {
            include_all: all || spec.included_resources.is_empty(),
            includes: inc,
            excludes: exc,
        };
        (f.clone(), f, spec.include_cluster_resources)
    };

    // Unset includeClusterResources: cluster resources go in only for a whole-cluster
    // backup; otherwise only those the namespaced items need (CRDs, PVs).
    let all_cluster = match cluster_mode {
        Some(v) => v,
        None => namespaces.includes_everything(),
    };
    let dependents = Dependents {
        crds_of_custom_resources: cluster_mode.is_none() && !all_cluster,
        pvs_of_claims: cluster_mode.is_none() && !all_cluster,
    };

    let ns_scope = if namespaces.includes_everything() {
        ListScope::AllNamespaces
    } else if let Some(lit) = namespaces.literal_includes() {
        let keep: Vec<String> = lit
            .iter()
            .filter(|n| namespaces.includes(n))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ListScope::Namespaces(keep)
    } else {
        let keep: Vec<String> = existing_namespaces
            .iter()
            .filter(|n| namespaces.includes(n))
            .cloned()
            .collect();
        ListScope::Namespaces(keep)
    };
    let missing_namespaces = match namespaces.literal_includes() {
        Some(lit) => lit
            .iter()
            .filter(|n| !existing_namespaces.contains(n))
            .cloned()
            .collect(),
        None => vec![],
    };

    let mut ordered_map = std::collections::BTreeMap::new();
    for (key, list) in &spec.ordered_resources {
        let (grs, warning) = ordered_key(key, &listable);
        warnings.extend(warning);
        let mut items = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.split('/').count() > 2 {
                warnings.push(format!(
                    "orderedResources {key:?}: item {item:?} is not name or namespace/name; it is not ordered"
                ));
            } else {
                items.push(item.to_owned());
            }
        }
        for gr in grs {
            ordered_map.insert(gr, items.clone());
        }
    }

    let mut resources = Vec::new();
    for r in &listable {
        let gr = r.group_resource();
        let is_namespaces = r.group.is_empty() && r.plural == "namespaces";
        let planned = if r.namespaced {
            if !ns_filter.should_include(&gr) {
                continue;
            }
            PlannedResource {
                resource: r.clone(),
                scope: ns_scope.clone(),
                filter_names_as_namespaces: false,
                ordered: ordered_map.get(&gr).cloned().unwrap_or_default(),
            }
        } else if is_namespaces {
            // Namespace objects of the included namespaces go in (label selectors do not
            // apply to them) unless excluded, or cluster resources are off for a
            // whole-cluster backup.
            let excluded = if new_style {
                cluster_filter.excludes.contains(&gr)
            } else {
                !cluster_filter.should_include(&gr)
                    || (cluster_mode == Some(false) && namespaces.includes_everything())
            };
            if excluded {
                continue;
            }
            PlannedResource {
                resource: r.clone(),
                scope: ListScope::Cluster,
                filter_names_as_namespaces: !namespaces.includes_everything(),
                ordered: ordered_map.get(&gr).cloned().unwrap_or_default(),
            }
        } else {
            let wanted = if new_style {
                cluster_filter.should_include(&gr)
            } else {
                all_cluster && cluster_filter.should_include(&gr)
            };
            if !wanted {
                continue;
            }
            PlannedResource {
                resource: r.clone(),
                scope: ListScope::Cluster,
                filter_names_as_namespaces: false,
                ordered: ordered_map.get(&gr).cloned().unwrap_or_default(),
            }
        };
        resources.push(planned);
    }
    // Stable, readable order: cluster-scoped first (namespaces, CRDs, ...), then by name.
    resources.sort_by(|a, b| {
        (a.resource.namespaced, a.resource.group_resource())
            .cmp(&(b.resource.namespaced, b.resource.group_resource()))
    });

    let (selectors, server_selector) = match (&spec.label_selector, &spec.or_label_selectors) {
        (Some(ls), _) => {
            let s = Selector::from_label_selector(ls)?;
            let text = (!s.is_empty()).then(|| s.to_string());
            (vec![s], text)
        }
        (None, ors) if !ors.is_empty() => (
            ors.iter()
                .map(Selector::from_label_selector)
                .collect::<Result<Vec<_>, _>>()?,
            None,
        ),
        _ => (vec![], None),
    };

    Ok(BackupPlan {
        resources,
        namespaces,
        selectors,
        server_selector,
        dependents,
        missing_namespaces,
        warnings,
        not_listable: served
            .iter()
            .filter(|r| !r.listable())
            .map(|r| r.group_resource())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::LabelSelector;
    use rstest::rstest;

    fn res(group: &str, plural: &str, kind: &str, namespaced: bool, short: &[&str]) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            verbs: vec!["list".into(), "get".into(), "create".into()],
        }
    }

    fn served() -> Vec<ApiResource> {
        vec![
            res("", "namespaces", "Namespace", false, &["ns"]),
            res("", "configmaps", "ConfigMap", true, &["cm"]),
            res("", "secrets", "Secret", true, &[]),
            res("", "pods", "Pod", true, &["po"]),
            res("", "persistentvolumes", "PersistentVolume", false, &["pv"]),
            res("", "events", "Event", true, &["ev"]),
            res("events.k8s.io", "events", "Event", true, &["ev"]),
            res("apps", "deployments", "Deployment", true, &["deploy"]),
            res(
                "rbac.authorization.k8s.io",
                "clusterroles",
                "ClusterRole",
                false,
                &[],
            ),
            res(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd"],
            ),
            res("example.com", "widgets", "Widget", true, &[]),
            ApiResource {
                verbs: vec!["create".into()],
                ..res(
                    "authentication.k8s.io",
                    "tokenreviews",
                    "TokenReview",
                    false,
                    &[],
                )
            },
        ]
    }

    fn names(plan: &BackupPlan) -> Vec<String> {
        plan.resources
            .iter()
            .map(|r| r.resource.group_resource())
            .collect()
    }

    fn spec(f: impl FnOnce(&mut BackupSpec)) -> BackupSpec {
        let mut s = BackupSpec::default();
        f(&mut s);
        s
    }

    fn ns_list() -> Vec<String> {
        ["default", "team-a", "team-b", "kube-system"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn whole_cluster_backup_takes_every_listable_type() {
        let plan = plan_backup(&BackupSpec::default(), &served(), &ns_list()).unwrap();
        insta::assert_debug_snapshot!(names(&plan));
        assert!(plan.resources.iter().all(|r| match r.scope {
            ListScope::Cluster => !r.resource.namespaced,
            ListScope::AllNamespaces => r.resource.namespaced,
            ListScope::Namespaces(_) | ListScope::AllNamespacesKeeping(_) => false,
        }));
        assert_eq!(plan.dependents, Dependents::default());
    }

    #[test]
    fn namespace_backup_drops_cluster_types_but_keeps_dependents() {
        let plan = plan_backup(
            &spec(|s| s.included_namespaces = vec!["team-a".into()]),
            &served(),
            &ns_list(),
        )
        .unwrap();
        let n = names(&plan);
        assert!(n.contains(&"namespaces".to_string()));
        assert!(!n.contains(&"clusterroles.rbac.authorization.k8s.io".to_string()));
        assert!(!n.contains(&"persistentvolumes".to_string()));
        assert!(plan.dependents.crds_of_custom_resources && plan.dependents.pvs_of_claims);
        let cm = plan
            .resources
            .iter()
            .find(|r| r.resource.plural == "configmaps")
            .unwrap();
        assert_eq!(cm.scope, ListScope::Namespaces(vec!["team-a".into()]));
        let ns = plan
            .resources
            .iter()
            .find(|r| r.resource.plural == "namespaces")
            .unwrap();
        assert!(ns.filter_names_as_namespaces);
    }

    fn scope_of(names: &[&str]) -> ListScope {
        ListScope::Namespaces(names.iter().map(|n| n.to_string()).collect())
    }

    fn keeping(names: &[&str]) -> ListScope {
        ListScope::AllNamespacesKeeping(names.iter().map(|n| n.to_string()).collect())
    }

    /// Issue 12, item 5: how the preflight turns a plan's scope into the one listed.
    #[rstest]
    #[case::many_namespaces_allowed(scope_of(&["team-a", "team-b"]), 4, true, keeping(&["team-a", "team-b"]))]
    #[case::many_namespaces_refused(scope_of(&["team-a", "team-b"]), 4, false, scope_of(&["team-a", "team-b"]))]
    #[case::one_namespace_of_many(scope_of(&["team-a"]), 100, true, scope_of(&["team-a"]))]
    #[case::whole_cluster_stays(ListScope::AllNamespaces, 100, false, ListScope::AllNamespaces)]
    #[case::cluster_scoped_stays(ListScope::Cluster, 100, true, ListScope::Cluster)]
    fn scopes_chosen_for_listing(
        #[case] planned: ListScope,
        #[case] in_cluster: usize,
        #[case] allowed: bool,
        #[case] expected: ListScope,
    ) {
        assert_eq!(planned.chosen(in_cluster, allowed), expected);
    }

    #[rstest]
    #[case(&["team-*"], &[], &["team-a", "team-b"])]
    #[case(&["*"], &["kube-*"], &["default", "team-a", "team-b"])]
    #[case(&["team-?"], &["team-b"], &["team-a"])]
    #[case(&["team-a", "missing"], &[], &["missing", "team-a"])]
    fn namespace_globs(#[case] inc: &[&str], #[case] exc: &[&str], #[case] expected: &[&str]) {
        let s = spec(|s| {
            s.included_namespaces = inc.iter().map(|x| x.to_string()).collect();
            s.excluded_namespaces = exc.iter().map(|x| x.to_string()).collect();
        });
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        let cm = plan
            .resources
            .iter()
            .find(|r| r.resource.plural == "configmaps")
            .unwrap();
        let listed: Vec<String> = match &cm.scope {
            ListScope::Namespaces(v) => v.clone(),
            ListScope::AllNamespaces => ns_list()
                .into_iter()
                .filter(|n| plan.namespaces.includes(n))
                .collect(),
            ListScope::Cluster | ListScope::AllNamespacesKeeping(_) => unreachable!(),
        };
        let mut listed = listed;
        listed.sort();
        assert_eq!(listed, expected);
    }

    #[rstest]
    #[case(&["deployments"], &["deployments.apps", "namespaces"])]
    #[case(&["deploy"], &["deployments.apps", "namespaces"])]
    #[case(&["Deployment"], &["deployments.apps", "namespaces"])]
    #[case(&["deployments.apps", "cm"], &["configmaps", "deployments.apps", "namespaces"])]
    #[case(&["events"], &["events", "namespaces"])]
    #[case(&["events.events.k8s.io"], &["events.events.k8s.io", "namespaces"])]
    fn resource_names_resolve_like_velero(#[case] inc: &[&str], #[case] expected: &[&str]) {
        let s = spec(|s| {
            s.included_resources = inc.iter().map(|x| x.to_string()).collect();
            s.included_resources.push("namespaces".into());
        });
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        let mut n = names(&plan);
        n.sort();
        assert_eq!(n, expected);
    }

    #[test]
    fn exclude_wins_over_wildcard() {
        let s = spec(|s| s.excluded_resources = vec!["secrets".into(), "events".into()]);
        let n = names(&plan_backup(&s, &served(), &ns_list()).unwrap());
        assert!(!n.contains(&"secrets".into()) && !n.contains(&"events".into()));
        assert!(n.contains(&"configmaps".into()) && n.contains(&"events.events.k8s.io".into()));
    }

    #[test]
    fn include_cluster_resources_true_with_namespace_filter() {
        let s = spec(|s| {
            s.included_namespaces = vec!["team-a".into()];
            s.include_cluster_resources = Some(true);
        });
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        assert!(names(&plan).contains(&"clusterroles.rbac.authorization.k8s.io".into()));
        assert_eq!(plan.dependents, Dependents::default());
    }

    #[test]
    fn include_cluster_resources_false_for_whole_cluster() {
        let s = spec(|s| s.include_cluster_resources = Some(false));
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        assert!(plan.resources.iter().all(|r| r.resource.namespaced));
    }

    #[test]
    fn scoped_filters() {
        let s = spec(|s| {
            s.included_cluster_scoped_resources = vec!["clusterroles".into()];
            s.included_namespace_scoped_resources = vec!["configmaps".into()];
        });
        let mut n = names(&plan_backup(&s, &served(), &ns_list()).unwrap());
        n.sort();
        assert_eq!(
            n,
            [
                "clusterroles.rbac.authorization.k8s.io",
                "configmaps",
                "namespaces"
            ]
        );
    }

    #[rstest]
    #[case(spec(|s| s.included_resources = vec!["deploymentz".into()]), "unknown resource \"deploymentz\"")]
    #[case::ambiguous_exclude(spec(|s| s.excluded_resources = vec!["ev".into()]), "ambiguous resource \"ev\" in excludedResources")]
    #[case(spec(|s| s.included_resources = vec!["ev".into()]), "ambiguous resource")]
    #[case(spec(|s| s.included_namespaces = vec!["[a".into()]), "invalid namespace pattern")]
    #[case(spec(|s| { s.included_resources = vec!["pods".into()]; s.included_cluster_scoped_resources = vec!["pv".into()]; }), "cannot be combined")]
    #[case(spec(|s| { s.label_selector = Some(LabelSelector::default()); s.or_label_selectors = vec![LabelSelector::default()]; }), "cannot be used together")]
    #[case(spec(|s| { s.included_resources = vec!["pods".into()]; s.excluded_resources = vec!["po".into()]; }), "both included and excluded")]
    fn bad_specs_are_refused(#[case] s: BackupSpec, #[case] message: &str) {
        let err = plan_backup(&s, &served(), &ns_list())
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}");
    }

    /// Issue 13, item 3: an orderedResources key is never a reason to fail a backup.
    #[rstest]
    #[case::plural("configmaps", &["configmaps"], None)]
    #[case::group_plural("deployments", &["deployments.apps"], None)]
    #[case::kind_of_a_guide("v1/Secret", &["secrets"], Some("\"v1/Secret\" is read as secrets; Velero matches only plural resource names and would ignore it: write \"secrets\""))]
    #[case::grouped_kind("apps/v1/Deployment", &["deployments.apps"], Some("write \"deployments\""))]
    #[case::other_version("apps/v1beta2/deployment", &["deployments.apps"], Some("write \"deployments\""))]
    #[case::singular("secret", &["secrets"], Some("write \"secrets\""))]
    #[case::short_name("cm", &["configmaps"], Some("write \"configmaps\""))]
    #[case::qualified("deployments.apps", &["deployments.apps"], Some("write \"deployments\""))]
    #[case::core_events("events", &["events"], None)]
    #[case::unserved("widgetz", &[], Some("orderedResources key \"widgetz\" names no resource the cluster serves; it is ignored"))]
    #[case::unserved_kind("v1/Widget", &[], Some("names no resource the cluster serves"))]
    #[case::kind_of_another_group("v1/Deployment", &[], Some("names no resource the cluster serves"))]
    #[case::ambiguous("ev", &[], Some("orderedResources key \"ev\" matches events, events.events.k8s.io; it is ignored"))]
    fn ordered_resources_keys(
        #[case] key: &str,
        #[case] resources: &[&str],
        #[case] warning: Option<&str>,
    ) {
        let (grs, w) = ordered_key(key, &served());
        assert_eq!(grs, resources);
        match (warning, w) {
            (None, None) => {}
            (Some(want), Some(got)) => assert!(got.contains(want), "{got}"),
            (want, got) => panic!("want {want:?}, got {got:?}"),
        }
    }

    #[test]
    fn ordered_resources_that_velero_ignores_do_not_fail_the_plan() {
        let s = spec(|s| {
            s.ordered_resources = [
                (
                    "v1/Secret".into(),
                    "production/db-credentials, payments/stripe-keys".into(),
                ),
                ("nosuchthings".into(), "a/b".into()),
                ("configmaps".into(), "ns/a/b,ns/cm1".into()),
            ]
            .into();
        });
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        let ordered = |gr: &str| {
            plan.resources
                .iter()
                .find(|r| r.resource.group_resource() == gr)
                .unwrap()
                .ordered
                .clone()
        };
        assert_eq!(
            ordered("secrets"),
            ["production/db-credentials", "payments/stripe-keys"]
        );
        // The malformed item is dropped with a warning; the rest is ordered as asked.
        assert_eq!(ordered("configmaps"), ["ns/cm1"]);
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("\"ns/a/b\" is not name or namespace/name"))
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("\"nosuchthings\" names no resource"))
        );
    }

    /// Issue 13, item 3: excluding what the cluster does not serve excludes nothing; an
    /// include of it is still refused (a typo there would leave data out unnoticed).
    #[rstest]
    #[case::old_style(spec(|s| s.excluded_resources = vec!["volumesnapshots".into(), "secrets".into()]), "excludedResources: \"volumesnapshots\" names no resource")]
    #[case::cluster_scoped(spec(|s| s.excluded_cluster_scoped_resources = vec!["volumesnapshotclasses".into()]), "excludedClusterScopedResources: \"volumesnapshotclasses\"")]
    #[case::namespace_scoped(spec(|s| { s.included_namespace_scoped_resources = vec!["*".into()]; s.excluded_namespace_scoped_resources = vec!["volumesnapshots".into()]; }), "excludedNamespaceScopedResources: \"volumesnapshots\"")]
    fn excluding_what_is_not_served_is_a_warning(#[case] s: BackupSpec, #[case] warning: &str) {
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        assert!(plan.warnings[0].starts_with(warning), "{:?}", plan.warnings);
        if !s.excluded_resources.is_empty() {
            assert!(!names(&plan).contains(&"secrets".into()));
        }
    }

    #[test]
    fn tokenreviews_are_not_listable() {
        let plan = plan_backup(&BackupSpec::default(), &served(), &ns_list()).unwrap();
        assert!(!names(&plan).iter().any(|x| x.starts_with("tokenreviews")));
        // ... and the plan says so, for the backup's log.
        assert_eq!(plan.not_listable, ["tokenreviews.authentication.k8s.io"]);
    }

    #[test]
    fn or_selectors_match_any() {
        let s = spec(|s| {
            s.or_label_selectors = vec![
                LabelSelector {
                    match_labels: [("app".into(), "a".into())].into(),
                    ..Default::default()
                },
                LabelSelector {
                    match_labels: [("app".into(), "b".into())].into(),
                    ..Default::default()
                },
            ]
        });
        let plan = plan_backup(&s, &served(), &ns_list()).unwrap();
        assert!(plan.server_selector.is_none());
        assert!(plan.selects(&[("app".into(), "b".into())].into()));
        assert!(!plan.selects(&[("app".into(), "c".into())].into()));
    }
}
