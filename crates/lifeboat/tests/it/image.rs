//! The container image (scripts/build-image.py), built from the binary under test. No
//! container runtime runs here, so the image is checked as a runtime would use it: every
//! blob matches its digest, the manifest and the docker-archive index name the same
//! config and layer, the config runs `lifeboat` as user 65532 (what `lifeboat install`'s
//! Deployment expects), and the layer alone is a root filesystem in which lifeboat runs —
//! chrooted into it as 65532, it backs up a namespace of the dev cluster over TLS.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `args` chrooted into `root` as the image's user. chroot needs root; scripts/test.sh
/// runs as root on CI (it installs packages), and a run without root fails here, saying so.
fn in_image(root: &Path, args: &[&str]) -> std::process::Output {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test chroots into the image: run it as root (scripts/test.sh does on CI)"
    );
    Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/home/nonroot")
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn image_layer_runs_lifeboat_as_the_deployment_user() {
    let env = Env::new();
    let image = build_lifeboat_image(env.dir.path(), &[]);
    let dir = env.dir.path().join("image");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&image)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());

    // Every blob is what its name says.
    let blobs = dir.join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        assert_eq!(
            sha256(&e.path()),
            e.file_name().to_string_lossy(),
            "blob {:?} does not match its digest",
            e.file_name()
        );
    }
    assert_eq!(
        read_json(&dir.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = read_json(&dir.join("index.json"));
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(tags.contains(&"latest"), "{index}");
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read_json(&blobs.join(&digest[7..]));
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    // The docker-archive index names the same blobs and the tag install uses by default.
    let docker = read_json(&dir.join("manifest.json"));
    assert_eq!(
        docker[0]["Config"],
        format!("blobs/sha256/{}", &config_digest[7..])
    );
    assert_eq!(
        docker[0]["Layers"][0],
        format!("blobs/sha256/{}", &layer_digest[7..])
    );
    assert!(
        docker[0]["RepoTags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("lifeboat:latest"))
    );
    let config = read_json(&blobs.join(&config_digest[7..]));
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/lifeboat"])
    );

    // The layer is the whole root filesystem: lifeboat runs in it, as the Deployment's
    // user, with nothing from this machine.
    let root = env.dir.path().join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(blobs.join(&layer_digest[7..]))
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    // The diff id in the config is the uncompressed layer's digest.
    let gunzipped = env.dir.path().join("layer.tar");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' > '{}'",
            blobs.join(&layer_digest[7..]).display(),
            gunzipped.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256(&gunzipped))
    );
    let out = in_image(&root, &["/usr/local/bin/lifeboat", "--version"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("lifeboat "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A backup from inside the image: kubeconfig and CA copied in, as a mounted Secret
    // would be.
    let kc = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let ca_path = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .expect("the dev kubeconfig names its CA file");
    std::fs::copy(ca_path, root.join("tmp/ca.crt")).unwrap();
    std::fs::write(
        root.join("tmp/kubeconfig"),
        kc.replace(ca_path, "/tmp/ca.crt"),
    )
    .unwrap();
    let ns = "image-it";
    env.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {ns}}}\ndata: {{k: v}}\n"
    ));
    let out = in_image(
        &root,
        &[
            "/usr/local/bin/lifeboat",
            "--kubeconfig",
            "/tmp/kubeconfig",
            "backup",
            "create",
            "from-image",
            "--include-namespaces",
            ns,
            "--storage-location",
            "file:///tmp/store",
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = read_json(&root.join("tmp/store/backups/from-image/velero-backup.json"));
    assert_eq!(meta["status"]["phase"], "Completed");
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}
