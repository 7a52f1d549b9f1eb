#!/usr/bin/env python3
"""Builds lifeboat's container image without a container daemon.

The image is one layer: the (stripped) lifeboat binary, the shared libraries it links
(found with ldd, so the glibc it was built against), the CA bundle, /etc/passwd and
/etc/group with the non-root user 65532 the Deployment runs as, and an empty /tmp.
Entrypoint /usr/local/bin/lifeboat; `lifeboat install` passes `server ...` as args.

The output is one tar that is both an OCI image layout (index.json, oci-layout,
blobs/sha256/...) and a `docker save` archive (manifest.json), so it loads with
`docker load -i`, `podman load -i`, `ctr images import`, or pushes with
`skopeo copy oci-archive:lifeboat.tar:latest docker://registry/lifeboat:TAG` (the archive
holds one entry per tag, so skopeo needs the tag after the file name).

The layer is reproducible: sorted entries, mtime 0, numeric owners, gzip without a
timestamp.

Usage: build-image.py --binary target/release/lifeboat --out lifeboat-image.tar
                      [--tag lifeboat:0.1.0] [--no-strip]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

USER = 65532


def shared_libraries(binary):
    """The files the dynamic loader maps for `binary`: (path in image, path on disk)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0:
        if "not a dynamic executable" in (out.stdout + out.stderr):
            return []
        sys.exit(f"ldd {binary}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        m = re.match(r"\S+ => (/\S+) \(0x", line) or re.match(r"(/\S+) \(0x", line)
        if m:
            libs.append((m.group(1), os.path.realpath(m.group(1))))
        elif "not found" in line:
            sys.exit(f"ldd {binary}: {line}")
    return libs


def add_dir(tar, path, mode=0o755, uid=0):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = 0
    tar.addfile(info)


def add_bytes(tar, path, data, mode=0o644):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def add_file(tar, path, source, mode):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = os.path.getsize(source)
    info.mode = mode
    info.mtime = 0
    with open(source, "rb") as f:
        tar.addfile(info, f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_layer(binary, work, strip):
    exe = os.path.join(work, "lifeboat")
    if strip:
        subprocess.run(["strip", "-o", exe, binary], check=True)
    else:
        shutil.copyfile(binary, exe)
    files = [("/usr/local/bin/lifeboat", exe, 0o755)]
    files += [(p, real, 0o755) for p, real in shared_libraries(binary)]
    ca = "/etc/ssl/certs/ca-certificates.crt"
    extra = {
        "/etc/passwd": f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n".encode(),
        "/etc/group": f"root:x:0:\nnonroot:x:{USER}:\n".encode(),
    }
    if os.path.exists(ca):
        files.append((ca, ca, 0o644))
    paths = {p for p, _, _ in files} | set(extra)
    dirs = {"/tmp", "/home/nonroot"}
    for p in paths:
        d = os.path.dirname(p)
        while d not in ("/", ""):
            dirs.add(d)
            d = os.path.dirname(d)

    layer_tar = os.path.join(work, "layer.tar")
    with tarfile.open(layer_tar, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            if d == "/tmp":
                add_dir(tar, d, 0o1777)
            elif d == "/home/nonroot":
                add_dir(tar, d, 0o755, USER)
            else:
                add_dir(tar, d)
        for p in sorted(paths):
            if p in extra:
                add_bytes(tar, p, extra[p])
            else:
                src, mode = next((s, m) for q, s, m in files if q == p)
                add_file(tar, p, src, mode)
    diff_id = sha256_file(layer_tar)
    layer_gz = os.path.join(work, "layer.tar.gz")
    with open(layer_tar, "rb") as src, open(layer_gz, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
            shutil.copyfileobj(src, gz, 1 << 20)
    os.remove(layer_tar)
    return layer_gz, diff_id


def architecture_of(binary):
    """The OCI architecture of an ELF binary, from its e_machine field."""
    with open(binary, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        sys.exit(f"{binary} is not an ELF executable")
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    arch = {0x3E: "amd64", 0xB7: "arm64", 0x28: "arm", 0xF3: "riscv64", 0x15: "ppc64le", 0x16: "s390x"}.get(machine)
    if arch is None:
        sys.exit(f"{binary}: unknown ELF machine {machine:#x}")
    return arch


def split_tag(tag):
    """repo[:tag] -> (repo, tag); a ':' before the last '/' is a registry port."""
    slash = tag.rfind("/")
    colon = tag.rfind(":")
    if colon > slash:
        return tag[:colon], tag[colon + 1:]
    return tag, "latest"


def containerd_name(tag):
    repo, version = split_tag(tag)
    first = repo.split("/")[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in first and ":" not in first and first != "localhost":
        repo = f"docker.io/{repo}"
    return f"{repo}:{version}"


def version_of(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    words = out.stdout.split()
    return words[-1] if out.returncode == 0 and words else "dev"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", action="append", help="repo:tag (default lifeboat:VERSION and lifeboat:latest)")
    ap.add_argument("--no-strip", action="store_true")
    a = ap.parse_args()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"{a.binary} is not an executable: build it first (cargo build --release)")
    version = version_of(a.binary)
    tags = [":".join(split_tag(t)) for t in (a.tag or [f"lifeboat:{version}", "lifeboat:latest"])]

    with tempfile.TemporaryDirectory() as work:
        layer_gz, diff_id = build_layer(a.binary, work, not a.no_strip)
        layer_digest = sha256_file(layer_gz)
        config = {
            "architecture": architecture_of(a.binary),
            "os": "linux",
            "config": {
                "User": f"{USER}:{USER}",
                "Entrypoint": ["/usr/local/bin/lifeboat"],
                "Cmd": ["server"],
                "Env": [
                    "PATH=/usr/local/bin",
                    "HOME=/home/nonroot",
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                ],
                "WorkingDir": "/home/nonroot",
                "Labels": {
                    "org.opencontainers.image.title": "lifeboat",
                    "org.opencontainers.image.version": version,
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created_by": "scripts/build-image.py"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = hashlib.sha256(config_bytes).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer_digest}",
                    "size": os.path.getsize(layer_gz),
                }
            ],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": f"sha256:{manifest_digest}",
                    "size": len(manifest_bytes),
                    "annotations": {
                        "io.containerd.image.name": containerd_name(t),
                        "org.opencontainers.image.ref.name": split_tag(t)[1],
                    },
                }
                for t in tags
            ],
        }
        docker_manifest = [
            {
                "Config": f"blobs/sha256/{config_digest}",
                "RepoTags": tags,
                "Layers": [f"blobs/sha256/{layer_digest}"],
            }
        ]
        tmp_out = a.out + ".part"
        with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as out:
            add_dir(out, "blobs")
            add_dir(out, "blobs/sha256")
            add_bytes(out, f"blobs/sha256/{config_digest}", config_bytes)
            add_bytes(out, f"blobs/sha256/{manifest_digest}", manifest_bytes)
            add_file(out, f"blobs/sha256/{layer_digest}", layer_gz, 0o644)
            add_bytes(out, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add_bytes(out, "index.json", json.dumps(index, sort_keys=True).encode())
            add_bytes(out, "manifest.json", json.dumps(docker_manifest).encode())
        os.replace(tmp_out, a.out)
    size = os.path.getsize(a.out)
    print(f"{a.out}: {', '.join(tags)} ({size / 1048576:.1f} MiB), manifest sha256:{manifest_digest}")


if __name__ == "__main__":
    main()
