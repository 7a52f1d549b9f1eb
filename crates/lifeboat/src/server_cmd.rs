//! `install`, `uninstall`, `server` and `schedule` (the in-cluster mode).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeboat_engine::cluster::Cluster;
use lifeboat_server::{self as server, ServerOptions};
use lifeboat_types::GoDuration;
use lifeboat_types::api::crd::ScheduleResource;
use lifeboat_types::api::velero::{ObjectMeta, ScheduleSpec, Time};
use lifeboat_types::manifests::install::{InstallOptions, LocationOptions, manifests};
use lifeboat_types::rules::schedule::Cron;
use serde_json::json;

use crate::cli::{Cli, InstallArgs, Output, ScheduleCmd, ServerArgs};
use crate::{backup_from_flags, connect, kube_config, output, parse_kv};

pub(crate) async fn install(cli: &Cli, a: &InstallArgs) -> Result<u8> {
    let location = match (&a.provider, &a.bucket) {
        (Some(provider), Some(bucket)) => Some(LocationOptions {
            provider: provider.clone(),
            bucket: bucket.clone(),
            prefix: a.prefix.clone(),
            config: parse_kv(&a.backup_location_config, "backup-location-config")?,
            credentials: a
                .secret_file
                .as_ref()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read --secret-file {}", p.display()))
                })
                .transpose()?,
        }),
        _ => None,
    };
    let opts = InstallOptions {
        namespace: cli.namespace.clone(),
        image: a.image.clone(),
        replicas: a.replicas,
        backup_only: a.backup_only,
        no_exec_hooks: a.no_exec_hooks,
        metrics_port: a.metrics_port,
        location,
    };
    let objs = manifests(&opts);
    if a.dry_run {
        match a.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"apiVersion": "v1", "kind": "List", "items": objs})
                )?
            ),
            _ => {
                for o in &objs {
                    println!("---\n{}", serde_yaml_ng::to_string(o)?.trim_end());
                }
            }
        }
        return Ok(0);
    }
    let cluster = connect(cli).await?;
    let done = lifeboat_server::install::apply(&cluster, &objs).await?;
    for d in &done {
        println!("{d}: applied");
    }
    println!(
        "lifeboat is installed in namespace {:?}. Check the server with `kubectl -n {} logs deploy/lifeboat`.",
        cli.namespace, cli.namespace
    );
    Ok(0)
}

pub(crate) async fn uninstall(cli: &Cli, force: bool) -> Result<u8> {
    if !force {
        if !std::io::stdin().is_terminal() {
            bail!(
                "uninstall deletes the lifeboat namespace {:?}, its CRDs and every Backup/Restore/Schedule object (stored backups stay); pass --force to confirm",
                cli.namespace
            );
        }
        eprint!(
            "Delete lifeboat from namespace {:?}, with its CRDs and objects (stored backups stay)? [y/N] ",
            cli.namespace
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !line.trim().eq_ignore_ascii_case("y") {
            println!("Nothing deleted.");
            return Ok(0);
        }
    }
    let cluster = connect(cli).await?;
    // The objects install would create, with every optional part, so all are found.
    let objs = manifests(&InstallOptions {
        namespace: cli.namespace.clone(),
        location: Some(LocationOptions {
            provider: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            config: Default::default(),
            credentials: Some(String::new()),
        }),
        ..Default::default()
    });
    // Custom resources hold finalizers that only the server removes: drop the server's
    // finalizers first so that deleting the CRDs does not hang (stored data stays).
    let client = cluster.client().clone();
    // The CRDs are cluster-wide: their objects in every namespace go with them.
    let all: Api<lifeboat_types::api::crd::BackupResource> = Api::all(client.clone());
    if let Ok(list) = all.list(&ListParams::default()).await {
        for b in list.items {
            let ns = b.namespace().unwrap_or_default();
            let api: Api<lifeboat_types::api::crd::BackupResource> =
                Api::namespaced(client.clone(), &ns);
            let _ = api
                .patch(
                    &b.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
    let done = lifeboat_server::install::delete(&cluster, &objs).await?;
    for d in &done {
        println!("{d}: deleted");
    }
    // A CRD goes once the API server has removed its objects: wait for that, so that
    // "uninstalled" means gone (and a new install does not meet a terminating CRD).
    let crds: Vec<String> = lifeboat_types::api::crd::all()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    for _ in 0..120 {
        let mut left = Vec::new();
        for n in &crds {
            let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}");
            if cluster
                .get_path(&path, "customresourcedefinitions")
                .await
                .is_ok()
            {
                left.push(n.clone());
            }
        }
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "lifeboat is uninstalled from namespace {:?}; stored backups were not touched.",
        cli.namespace
    );
    Ok(0)
}

pub(crate) async fn server(cli: &Cli, a: &ServerArgs) -> Result<u8> {
    let config = kube_config(cli).await?;
    let dur = |flag: &str, v: &str| -> Result<Duration> {
        Ok(v.parse::<GoDuration>()
            .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?
            .0)
    };
    let identity = a.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "lifeboat".into());
        format!("{host}-{}", std::process::id())
    });
    let opts = ServerOptions {
        namespace: cli.namespace.clone(),
        metrics_address: a.metrics_address.parse().with_context(|| {
            format!("--metrics-address {:?} is not HOST:PORT", a.metrics_address)
        })?,
        concurrent_backups: a.concurrent_backups,
        concurrent_restores: a.concurrent_restores,
        identity,
        validation_every: dur(
            "store-validation-frequency",
            &a.default_validation_frequency,
        )?,
        sync_every: dur("backup-sync-period", &a.backup_sync_period)?,
        gc_every: match dur(
            "garbage-collection-frequency",
            &a.garbage_collection_frequency,
        )? {
            d if d.is_zero() => bail!(
                "--garbage-collection-frequency must be more than 0s (expired backups are looked for that often)"
            ),
            d => d,
        },
        shutdown_grace: Duration::from_secs(20),
        metric_names: match a.metric_names {
            crate::cli::MetricNamesArg::Velero => server::metrics::MetricNames::Velero,
            crate::cli::MetricNamesArg::Promlint => server::metrics::MetricNames::Promlint,
        },
    };
    let shutdown = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    server::run(config, opts, shutdown).await?;
    Ok(0)
}

fn schedules(client: kube::Client, ns: &str) -> Api<ScheduleResource> {
    Api::namespaced(client, ns)
}

async fn names_or_all(
    api: &Api<ScheduleResource>,
    names: &[String],
    all: bool,
) -> Result<Vec<String>> {
    if all {
        Ok(api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect())
    } else {
        Ok(names.to_vec())
    }
}

/// A missing Schedule resource type means lifeboat is not installed: say so.
fn crd_hint(e: kube::Error) -> anyhow::Error {
    match &e {
        kube::Error::Api(s) if s.code == 404 && s.message.contains("the server could not find") => {
            anyhow::anyhow!(
                "the cluster has no lifeboat.dev Schedule resource: run `lifeboat install` first ({e})"
            )
        }
        _ => e.into(),
    }
}

/// The error of a request about schedule `n`: a 404 names the schedule.
fn named(ns: &str, n: &str, e: kube::Error) -> anyhow::Error {
    match &e {
        kube::Error::Api(s)
            if s.code == 404 && !s.message.contains("the server could not find") =>
        {
            anyhow::anyhow!("schedule {n:?} not found in namespace {ns}")
        }
        _ => crd_hint(e),
    }
}

pub(crate) async fn schedule(cli: &Cli, cmd: &ScheduleCmd) -> Result<u8> {
    if let ScheduleCmd::Create(c) = cmd {
        // Checked before anything is sent.
        Cron::parse(&c.schedule).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let cluster = connect(cli).await?;
    let api = schedules(cluster.client().clone(), &cli.namespace);
    match cmd {
        ScheduleCmd::Create(c) => {
            let backup = backup_from_flags(&c.template, &cli.namespace)?;
            let mut template = backup.spec;
            template.metadata.labels = backup.metadata.labels;
            let spec = ScheduleSpec {
                template,
                schedule: c.schedule.clone(),
                use_owner_references_in_backup: c.use_owner_references_in_backup.then_some(true),
                paused: c.paused,
                skip_immediately: c.skip_immediately.then_some(true),
            };
            let mut s = ScheduleResource::new(&c.template.name, spec);
            s.metadata.namespace = Some(cli.namespace.clone());
            let made = api
                .create(&PostParams::default(), &s)
                .await
                .map_err(|e| match &e {
                    kube::Error::Api(s) if s.code == 409 => anyhow::anyhow!(
                        "schedule {:?} already exists in namespace {}",
                        c.template.name,
                        cli.namespace
                    ),
                    _ => crd_hint(e),
                })?;
            match &c.template.output {
                Some(o) => {
                    output::print_structured(&made, o)?;
                }
                None => println!(
                    "Schedule {:?} created successfully. Its backups are named {}-YYYYMMDDhhmmss; see them with `lifeboat backup get -l velero.io/schedule-name={}`.",
                    c.template.name, c.template.name, c.template.name
                ),
            }
            Ok(0)
        }
        ScheduleCmd::Get { names, output: o } => {
            let items: Vec<ScheduleResource> = if names.is_empty() {
                api.list(&ListParams::default())
                    .await
                    .map_err(crd_hint)?
                    .items
            } else {
                let mut v = Vec::new();
                for n in names {
                    v.push(api.get(n).await.map_err(|e| named(&cli.namespace, n, e))?);
                }
                v
            };
            if matches!(o, Output::Table) {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|s| {
                        let st = s.status.clone().unwrap_or_default();
                        vec![
                            s.name_any(),
                            st.phase.to_string(),
                            s.metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0.to_string())
                                .unwrap_or_default(),
                            s.spec.schedule.clone(),
                            s.spec
                                .template
                                .ttl
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "720h0m0s".into()),
                            st.last_backup
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "n/a".into()),
                            s.spec.paused.to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &[
                            "NAME",
                            "STATUS",
                            "CREATED",
                            "SCHEDULE",
                            "BACKUP TTL",
                            "LAST BACKUP",
                            "PAUSED"
                        ],
                        &rows
                    )
                );
            } else {
                output::print_one_or_list(&items, "ScheduleList", names.len() == 1, o)?;
            }
            Ok(0)
        }
        ScheduleCmd::Describe { names } => {
            let items: Vec<ScheduleResource> = if names.is_empty() {
                api.list(&ListParams::default())
                    .await
                    .map_err(crd_hint)?
                    .items
            } else {
                let mut v = Vec::new();
                for n in names {
                    v.push(api.get(n).await.map_err(|e| named(&cli.namespace, n, e))?);
                }
                v
            };
            for s in items {
                let st = s.status.clone().unwrap_or_default();
                println!("Name:         {}", s.name_any());
                println!("Namespace:    {}", s.namespace().unwrap_or_default());
                println!("Phase:        {}", st.phase);
                for e in &st.validation_errors {
                    println!("  Validation error: {e}");
                }
                println!("Paused:       {}", s.spec.paused);
                println!("Schedule:     {}", s.spec.schedule);
                println!(
                    "Skip immediately: {}",
                    s.spec.skip_immediately.unwrap_or(false)
                );
                println!(
                    "Backup template:\n{}",
                    textwrap(&serde_yaml_ng::to_string(&s.spec.template)?)
                );
                println!(
                    "Last backup:  {}",
                    st.last_backup
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "<never>".into())
                );
                if let Some(t) = st.last_skipped {
                    println!("Last skipped: {t}");
                }
                println!();
            }
            Ok(0)
        }
        ScheduleCmd::Pause { names, all } | ScheduleCmd::Unpause { names, all } => {
            let pause = matches!(cmd, ScheduleCmd::Pause { .. });
            for n in names_or_all(&api, names, *all)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let s = api
                    .patch(
                        &n,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"paused": pause}})),
                    )
                    .await
                    .map_err(|e| named(&cli.namespace, &n, e))?;
                if !pause && s.spec.skip_immediately == Some(true) {
                    api.patch_status(
                        &n,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"lastSkipped": Time::now()}})),
                    )
                    .await?;
                }
                println!(
                    "Schedule {n:?} {}.",
                    if pause { "paused" } else { "unpaused" }
                );
            }
            Ok(0)
        }
        ScheduleCmd::Delete {
            names,
            all,
            confirm,
        } => {
            let targets = names_or_all(&api, names, *all).await?;
            if !confirm {
                if !std::io::stdin().is_terminal() {
                    bail!("deleting schedules {targets:?} needs --confirm (their backups stay)");
                }
                eprint!("Delete schedules {targets:?}? Their backups stay. [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if !line.trim().eq_ignore_ascii_case("y") {
                    println!("Nothing deleted.");
                    return Ok(0);
                }
            }
            // Orphan: backups a schedule owns (useOwnerReferencesInBackup) must not be
            // garbage-collected with it — their finalizer would delete their data.
            let orphan = DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
                ..Default::default()
            };
            for n in targets {
                api.delete(&n, &orphan)
                    .await
                    .map_err(|e| named(&cli.namespace, &n, e))?;
                println!("Schedule {n:?} deleted.");
            }
            Ok(0)
        }
    }
}

fn textwrap(yaml: &str) -> String {
    yaml.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A velero.io/v1 document handed to the server: created as the lifeboat.dev object of the
/// same kind in the cluster (its namespace, else `-n`). The spec is the same Rust type, so
/// nothing is translated away; unknown fields were refused when the document was read.
pub(crate) enum ServerDocument {
    /// A Backup, run by the server.
    Backup(lifeboat_types::api::velero::Backup),
    /// A Restore, run by the server.
    Restore(lifeboat_types::api::velero::Restore),
    /// A Schedule.
    Schedule(lifeboat_types::api::velero::Schedule),
    /// A storage location (its credential names a Secret in the namespace).
    Location(lifeboat_types::api::velero::BackupStorageLocation),
}

async fn create_object<K>(cluster: &Cluster, ns: &str, mut obj: K, meta: &ObjectMeta) -> Result<()>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    obj.meta_mut().namespace = Some(ns.to_string());
    obj.meta_mut().labels = (!meta.labels.is_empty()).then(|| meta.labels.clone());
    obj.meta_mut().annotations = (!meta.annotations.is_empty()).then(|| meta.annotations.clone());
    let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
    api.create(&PostParams::default(), &obj)
        .await
        .map_err(|e| match &e {
            kube::Error::Api(st) if st.code == 409 => {
                anyhow::anyhow!("{kind} {:?} already exists in namespace {ns}", meta.name)
            }
            kube::Error::Api(st) if st.code == 404 => anyhow::anyhow!(
                "the cluster has no lifeboat.dev {kind} resource: run `lifeboat install` first ({e})"
            ),
            kube::Error::Api(st) if st.code == 422 => {
                anyhow::anyhow!("{kind} {:?} was refused by the API server: {}", meta.name, st.message)
            }
            _ => e.into(),
        })?;
    Ok(())
}

fn doc_kind(doc: &ServerDocument) -> &'static str {
    match doc {
        ServerDocument::Backup(_) => "Backup",
        ServerDocument::Restore(_) => "Restore",
        ServerDocument::Schedule(_) => "Schedule",
        ServerDocument::Location(_) => "BackupStorageLocation",
    }
}

/// `apply -f` of a document the server runs (a Schedule always; Backup, Restore and
/// BackupStorageLocation with `--server`).
pub(crate) async fn apply_to_server(cli: &Cli, doc: ServerDocument) -> Result<()> {
    use lifeboat_types::api::crd::{
        BackupResource, BackupStorageLocationResource, RestoreResource,
    };
    let meta = match &doc {
        ServerDocument::Backup(b) => &b.metadata,
        ServerDocument::Restore(r) => &r.metadata,
        ServerDocument::Schedule(s) => &s.metadata,
        ServerDocument::Location(l) => &l.metadata,
    }
    .clone();
    lifeboat_types::api::names::validate_name("object", &meta.name)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // As kubectl: a document's namespace must agree with -n (whose default is velero, the
    // namespace the guides' documents name).
    let ns = match &meta.namespace {
        Some(doc_ns) if *doc_ns != cli.namespace => bail!(
            "{} {:?} names namespace {doc_ns:?} but -n is {:?}: pass -n {doc_ns}, or change (or drop) metadata.namespace in the document",
            doc_kind(&doc),
            meta.name,
            cli.namespace
        ),
        _ => cli.namespace.clone(),
    };
    // Checked here so that a bad document is named before anything is created.
    let (what, runs) = match &doc {
        ServerDocument::Schedule(s) => {
            Cron::parse(&s.spec.schedule)
                .map_err(|e| anyhow::anyhow!("Schedule {:?}: {e}", meta.name))?;
            ("Schedule", "the lifeboat server makes its backups")
        }
        ServerDocument::Restore(r) => {
            if r.spec.backup_name.is_empty()
                && r.spec.schedule_name.as_deref().unwrap_or("").is_empty()
            {
                bail!(
                    "Restore {:?}: spec.backupName or spec.scheduleName is required",
                    meta.name
                );
            }
            ("Restore", "the lifeboat server runs it")
        }
        ServerDocument::Backup(_) => ("Backup", "the lifeboat server runs it"),
        ServerDocument::Location(_) => {
            ("BackupStorageLocation", "the lifeboat server validates it")
        }
    };
    let cluster = connect(cli).await?;
    match doc {
        ServerDocument::Schedule(s) => {
            create_object(
                &cluster,
                &ns,
                ScheduleResource::new(&meta.name, s.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Backup(b) => {
            create_object(
                &cluster,
                &ns,
                BackupResource::new(&meta.name, b.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Restore(r) => {
            create_object(
                &cluster,
                &ns,
                RestoreResource::new(&meta.name, r.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Location(l) => {
            create_object(
                &cluster,
                &ns,
                BackupStorageLocationResource::new(&meta.name, l.spec),
                &meta,
            )
            .await?
        }
    }
    println!("{what} {:?} created in namespace {ns}; {runs}.", meta.name);
    Ok(())
}
