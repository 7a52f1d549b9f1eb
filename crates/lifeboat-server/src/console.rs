//! The DR console: a read-only page (`/console`) and its state (`/console/api/state`) on
//! the metrics port. Who may read it is `types::readiness::console::access`: open on a
//! loopback address when no token is configured, else the bearer token (the page takes it
//! from its URL's fragment, `#token=...`, which no server or proxy log sees, and sends it
//! as a header). Every request reads the cluster afresh (Backups, Schedules, DRPlans of
//! this namespace); the audit's findings are kept for [`AUDIT_FOR`]. Any replica serves it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kube::Api;
use kube::api::ListParams;
use lifeboat_engine::cluster::Cluster;
use lifeboat_types::api::crd::{BackupResource, ScheduleResource};
use lifeboat_types::api::velero::{BackupPhase, Time};
use lifeboat_types::dr::plan::{DrPlanResource, validate};
use lifeboat_types::dr::status::backup_covers;
use lifeboat_types::readiness::console::{Access, access, rpo_series};
use lifeboat_types::rules::schedule::SCHEDULE_LABEL;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// How long the audit's findings are kept before the next request audits again.
pub const AUDIT_FOR: Duration = Duration::from_secs(300);
/// How long an audit may take; the console answers with the error then (kept like a
/// result, so the next try is [`AUDIT_FOR`] later).
const AUDIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How far back the RPO chart reaches.
const CHART_SPAN: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// The newest backups listed.
const BACKUPS_SHOWN: usize = 200;

/// The page.
pub const PAGE: &str = include_str!("console.html");

/// What the console reads with.
pub(crate) struct Console {
    pub cluster: Cluster,
    pub ns: String,
    pub token: Option<String>,
    pub loopback: bool,
    audit: Mutex<Option<(Instant, Value)>>,
}

impl Console {
    pub(crate) fn new(
        cluster: Cluster,
        ns: String,
        token: Option<String>,
        loopback: bool,
    ) -> Console {
        Console {
            cluster,
            ns,
            token,
            loopback,
            audit: Mutex::new(None),
        }
    }

    fn refused(&self, headers: &HeaderMap) -> Option<Response> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match access(
            self.loopback,
            self.token.as_deref(),
            header("authorization"),
            header("host"),
        ) {
            Access::Allowed => None,
            Access::Unauthorized => Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Bearer")],
                    "the console needs its bearer token: open /console#token=TOKEN, or send Authorization: Bearer TOKEN\n",
                )
                    .into_response(),
            ),
            Access::NoTokenConfigured => Some(
                (
                    StatusCode::FORBIDDEN,
                    "the console listens beyond localhost and has no token: start the server with --console-token-file FILE (or LIFEBOAT_CONSOLE_TOKEN_FILE), or bind --metrics-address to 127.0.0.1\n",
                )
                    .into_response(),
            ),
            Access::ForeignHost => Some(
                (
                    StatusCode::FORBIDDEN,
                    "without a token the console answers only to a loopback Host (localhost, 127.0.0.1, [::1]); open it by one of those names, or give the server --console-token-file\n",
                )
                    .into_response(),
            ),
        }
    }
}

/// GET /console: the page (it holds no data; its script asks the state).
pub(crate) async fn page() -> Response {
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            (
                "content-security-policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// GET /console/api/state.
pub(crate) async fn state(c: Arc<Console>, headers: HeaderMap) -> Response {
    if let Some(r) = c.refused(&headers) {
        return r;
    }
    match gather(&c).await {
        Ok(v) => (
            [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
            ],
            v.to_string(),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn gather(c: &Console) -> Result<Value, String> {
    let client = c.cluster.client().clone();
    let lp = ListParams::default();
    let say = |what: &str, e: kube::Error| format!("cannot list {what}: {}", crate::chain(&e));
    let mut backups = Api::<BackupResource>::namespaced(client.clone(), &c.ns)
        .list(&lp)
        .await
        .map_err(|e| say("backups", e))?
        .items;
    backups.sort_by_key(|b| std::cmp::Reverse(b.metadata.creation_timestamp.clone().map(|t| t.0)));
    let schedules = Api::<ScheduleResource>::namespaced(client.clone(), &c.ns)
        .list(&lp)
        .await
        .map_err(|e| say("schedules", e))?
        .items;
    let plans = Api::<DrPlanResource>::namespaced(client.clone(), &c.ns)
        .list(&lp)
        .await
        .map_err(|e| say("DR plans", e))?
        .items;
    let now = chrono::Utc::now();

    let backup_rows: Vec<Value> = backups
        .iter()
        .take(BACKUPS_SHOWN)
        .map(|b| {
            let s = b.status.clone().unwrap_or_default();
            json!({
                "name": b.metadata.name,
                "phase": if b.status.is_some() { s.phase.to_string() } else { "New".into() },
                "schedule": b.metadata.labels.as_ref().and_then(|l| l.get(SCHEDULE_LABEL)),
                "location": b.spec.storage_location,
                "namespaces": b.spec.included_namespaces,
                "started": s.start_timestamp,
                "completed": s.completion_timestamp,
                "errors": s.errors,
                "warnings": s.warnings,
            })
        })
        .collect();
    let schedule_rows: Vec<Value> = schedules
        .iter()
        .map(|s| {
            json!({
                "name": s.metadata.name,
                "schedule": s.spec.schedule,
                "paused": s.spec.paused,
                "namespaces": s.spec.template.included_namespaces,
                "phase": s.status.as_ref().map(|st| st.phase.to_string()),
                "lastBackup": s.status.as_ref().and_then(|st| st.last_backup),
            })
        })
        .collect();
    let mut plan_rows = Vec::new();
    let mut audited_namespaces: Vec<String> = Vec::new();
    for p in &plans {
        let name = p.metadata.name.clone().unwrap_or_default();
        let status = p.status.clone().unwrap_or_default();
        let objective = validate(&name, p.spec.clone())
            .ok()
            .map(|pl| pl.rpo.as_secs());
        audited_namespaces.extend(p.spec.namespaces.iter().cloned());
        let points: Vec<_> = backups
            .iter()
            .filter(|b| {
                p.spec
                    .namespaces
                    .iter()
                    .all(|ns| backup_covers(&b.spec, ns))
            })
            .filter_map(|b| {
                let s = b.status.as_ref()?;
                (s.phase == BackupPhase::Completed).then_some(())?;
                Some((
                    s.start_timestamp.as_ref()?.0,
                    s.completion_timestamp.as_ref()?.0,
                ))
            })
            .collect();
        plan_rows.push(json!({
            "name": name,
            "tier": p.spec.tier,
            "namespaces": p.spec.namespaces,
            "health": status.health,
            "phase": status.phase,
            "rpoSeconds": status.rpo_seconds,
            "objectiveSeconds": objective,
            "clusters": status.clusters,
            "lastDrill": status.last_drill,
            "lastFailover": status.last_failover,
            "rpoSeries": rpo_series(&points, now.checked_sub_signed(CHART_SPAN).unwrap_or(now), now),
        }));
    }
    audited_namespaces.sort();
    audited_namespaces.dedup();
    let findings = findings(c, audited_namespaces).await;
    Ok(json!({
        "namespace": c.ns,
        "generatedAt": Time(now),
        "plans": plan_rows,
        "backups": backup_rows,
        "backupsTotal": backups.len(),
        "schedules": schedule_rows,
        "audit": findings,
    }))
}

/// The audit of the DR plans' namespaces (every namespace when there is no plan), kept
/// for [`AUDIT_FOR`].
async fn findings(c: &Console, namespaces: Vec<String>) -> Value {
    let mut held = c.audit.lock().await;
    if let Some((at, v)) = held.as_ref()
        && at.elapsed() < AUDIT_FOR
    {
        return v.clone();
    }
    let scope = lifeboat_readiness::audit::Scope {
        namespaces: (!namespaces.is_empty()).then_some(namespaces),
        rpo: (Duration::from_secs(86_400), "--rpo 24h".into()),
        locations: Vec::new(),
        etcd_max_age: Some(Duration::from_secs(86_400)),
    };
    let v = match tokio::time::timeout(
        AUDIT_TIMEOUT,
        lifeboat_readiness::audit::read(&c.cluster, &scope),
    )
    .await
    {
        Ok(Ok(read)) => {
            let f = lifeboat_types::readiness::audit::audit(&read.observed, &Default::default());
            json!({"at": Time(chrono::Utc::now()), "findings": f, "warnings": read.warnings})
        }
        Ok(Err(e)) => json!({"error": crate::chain(&e)}),
        Err(_) => {
            json!({"error": format!("the audit did not finish within {}s", AUDIT_TIMEOUT.as_secs())})
        }
    };
    *held = Some((Instant::now(), v.clone()));
    v
}
