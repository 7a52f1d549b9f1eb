//! Whether a standby holds the images the plan's workloads run (pure): the images a
//! workload's pod template names, the images a node says it holds (`status.images`),
//! and which are missing, compared in one canonical form (`busybox` is
//! `docker.io/library/busybox:latest`, as the container runtime names it).

use std::collections::BTreeSet;

use serde_json::Value;

/// `r` as a container runtime names it: a registry (`docker.io` when the first part is
/// not a host: no `.` or `:`, not `localhost`), `library/` for a single-part Docker Hub
/// name, and `:latest` when it has neither tag nor digest.
pub fn canonical_image(r: &str) -> String {
    let r = r.trim();
    // `name:tag@digest` is pulled by digest, and the runtime names it `name@digest`.
    let stripped;
    let r = match r.split_once('@') {
        Some((name, digest)) => {
            let last_slash = name.rfind('/').map_or(0, |i| i + 1);
            let name = match name[last_slash..].rfind(':') {
                Some(i) => &name[..last_slash + i],
                None => name,
            };
            stripped = format!("{name}@{digest}");
            stripped.as_str()
        }
        None => r,
    };
    let (first, rest) = match r.split_once('/') {
        Some((f, rest)) if f.contains('.') || f.contains(':') || f == "localhost" => {
            (f.to_owned(), rest.to_owned())
        }
        Some(_) => ("docker.io".to_owned(), r.to_owned()),
        None => ("docker.io".to_owned(), format!("library/{r}")),
    };
    let last = rest.rsplit('/').next().unwrap_or(&rest);
    let tagged = last.contains(':') || rest.contains('@');
    format!("{first}/{rest}{}", if tagged { "" } else { ":latest" })
}

fn pod_spec_images(spec: Option<&Value>, out: &mut BTreeSet<String>) {
    let Some(spec) = spec else {
        return;
    };
    for list in ["initContainers", "containers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(i) = c.get("image").and_then(Value::as_str) {
                out.insert(i.to_owned());
            }
        }
    }
}

/// The images a Deployment, StatefulSet, DaemonSet or CronJob runs, as written.
pub fn workload_images(obj: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    pod_spec_images(obj.pointer("/spec/template/spec"), &mut out);
    pod_spec_images(
        obj.pointer("/spec/jobTemplate/spec/template/spec"),
        &mut out,
    );
    out
}

/// The images a Node says it holds (every name of each), canonical.
pub fn node_images(node: &Value) -> BTreeSet<String> {
    node.pointer("/status/images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("names").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(canonical_image)
        .collect()
}

/// The images of `needed` (as written) that `present` (canonical) does not hold.
pub fn missing_images(needed: &BTreeSet<String>, present: &BTreeSet<String>) -> Vec<String> {
    needed
        .iter()
        .filter(|i| !present.contains(&canonical_image(i)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case::hub_single("busybox", "docker.io/library/busybox:latest")]
    #[case::hub_tagged("busybox:1.35", "docker.io/library/busybox:1.35")]
    #[case::hub_user("bitnami/redis:7", "docker.io/bitnami/redis:7")]
    #[case::registry("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9")]
    #[case::registry_port_untagged("reg:5000/app", "reg:5000/app:latest")]
    #[case::localhost("localhost/busybox:1.35.0", "localhost/busybox:1.35.0")]
    #[case::digest("quay.io/x/y@sha256:abc", "quay.io/x/y@sha256:abc")]
    #[case::tag_and_digest("nginx:1.25@sha256:abc", "docker.io/library/nginx@sha256:abc")]
    #[case::port_and_digest("reg:5000/app@sha256:abc", "reg:5000/app@sha256:abc")]
    fn images_in_the_runtimes_form(#[case] r: &str, #[case] want: &str) {
        assert_eq!(canonical_image(r), want);
    }

    #[test]
    fn workloads_and_cronjobs_name_their_images() {
        let d = json!({"spec": {"template": {"spec": {
            "initContainers": [{"image": "busybox"}],
            "containers": [{"image": "nginx:1.25"}, {"image": "nginx:1.25"}]}}}});
        assert_eq!(
            workload_images(&d).into_iter().collect::<Vec<_>>(),
            ["busybox", "nginx:1.25"]
        );
        let c = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "report:2"}]}}}}}});
        assert_eq!(
            workload_images(&c).into_iter().collect::<Vec<_>>(),
            ["report:2"]
        );
    }

    #[test]
    fn what_no_node_holds_is_missing() {
        let node = json!({"status": {"images": [
            {"names": ["docker.io/library/nginx@sha256:1", "docker.io/library/nginx:1.25"]},
            {"names": ["localhost/busybox:1.35.0"]}]}});
        let present = node_images(&node);
        let needed: BTreeSet<String> = ["nginx:1.25", "localhost/busybox:1.35.0", "redis:7"]
            .map(str::to_owned)
            .into();
        assert_eq!(missing_images(&needed, &present), ["redis:7"]);
    }
}
