#!/usr/bin/env python3
"""Builds container images without a container daemon: lifeboat's, and the dev cluster's.

Images (--image, default lifeboat):
  lifeboat  one layer: the (stripped) lifeboat binary, the shared libraries it links
(found with ldd, so the glibc it was built against), the CA bundle, /etc/passwd and
/etc/group with the non-root user 65532 the Deployment runs as, and an empty /tmp.
Entrypoint /usr/local/bin/lifeboat; `lifeboat install` passes `server ...` as args.
  pause     the pod sandbox: the kubernetes source's build/pause/linux/pause.c compiled with
            `gcc -static` (--source: that file), as its Makefile does.
  busybox   Debian's busybox-static with its applet links, /etc/passwd and /tmp.
  postgres  Debian's PostgreSQL server and client binaries with the libraries they load
            (ldd), its share/ data, the zoneinfo, and busybox for the entrypoint script,
            which makes the cluster in $PGDATA (initdb) when it is empty, then runs
            postgres. User postgres (999); POSTGRES_PASSWORD sets the superuser's password.

The output is one tar that is both an OCI image layout (index.json, oci-layout,
blobs/sha256/...) and a `docker save` archive (manifest.json), so it loads with
`docker load -i`, `podman load -i`, `ctr images import`, or pushes with
`skopeo copy oci-archive:lifeboat.tar:latest docker://registry/lifeboat:TAG` (the archive
holds one entry per tag, so skopeo needs the tag after the file name).

The layer is reproducible: sorted entries, mtime 0, numeric owners, gzip without a
timestamp.

Usage: build-image.py --binary target/release/lifeboat --out lifeboat-image.tar
                      [--tag lifeboat:0.1.0] [--no-strip]
       build-image.py --image pause --source .../build/pause/linux/pause.c --out pause.tar
       build-image.py --image busybox|postgres --out FILE [--tag NAME:TAG]
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


def add_file(tar, path, source, mode, uid=0):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = os.path.getsize(source)
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = 0
    with open(source, "rb") as f:
        tar.addfile(info, f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Layer:
    """The files of a one-layer image, by path in the image; parents are added as dirs."""

    def __init__(self):
        self.entries = {}

    def file(self, path, source, mode=0o755, uid=0):
        self.entries[path] = ("file", source, mode, uid)

    def data(self, path, data, mode=0o644):
        self.entries[path] = ("data", data, mode, 0)

    def dir(self, path, mode=0o755, uid=0):
        self.entries[path] = ("dir", None, mode, uid)

    def link(self, path, target):
        self.entries[path] = ("link", target, 0o777, 0)

    def with_libraries(self, binary):
        """The shared libraries the loader maps for `binary`."""
        for p, real in shared_libraries(binary):
            self.file(p, real)

    def write(self, work):
        """Writes the layer (sorted, mtime 0, numeric owners, gzip without a timestamp):
        returns (path of layer.tar.gz, diff_id)."""
        for p in list(self.entries):
            d = os.path.dirname(p)
            while d not in ("/", ""):
                self.entries.setdefault(d, ("dir", None, 0o755, 0))
                d = os.path.dirname(d)
        layer_tar = os.path.join(work, "layer.tar")
        with tarfile.open(layer_tar, "w", format=tarfile.PAX_FORMAT) as tar:
            for p in sorted(self.entries):
                kind, src, mode, uid = self.entries[p]
                if kind == "dir":
                    add_dir(tar, p, mode, uid)
                elif kind == "data":
                    add_bytes(tar, p, src, mode)
                elif kind == "link":
                    info = tarfile.TarInfo(p.lstrip("/"))
                    info.type = tarfile.SYMTYPE
                    info.linkname = src
                    info.mode = mode
                    info.mtime = 0
                    tar.addfile(info)
                else:
                    add_file(tar, p, src, mode, uid)
        diff_id = sha256_file(layer_tar)
        layer_gz = os.path.join(work, "layer.tar.gz")
        with open(layer_tar, "rb") as src, open(layer_gz, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
        os.remove(layer_tar)
        return layer_gz, diff_id


def passwd_files(layer, users):
    """/etc/passwd and /etc/group for root and `users` [(name, uid, home)]."""
    passwd = "root:x:0:0:root:/root:/sbin/nologin\n" + "".join(
        f"{n}:x:{u}:{u}:{n}:{h}:/sbin/nologin\n" for n, u, h in users
    )
    group = "root:x:0:\n" + "".join(f"{n}:x:{u}:\n" for n, u, _ in users)
    layer.data("/etc/passwd", passwd.encode())
    layer.data("/etc/group", group.encode())


def lifeboat_layer(a, work):
    if not a.binary or not os.access(a.binary, os.X_OK):
        sys.exit(f"{a.binary} is not an executable: build it first (cargo build --release)")
    exe = os.path.join(work, "lifeboat")
    if not a.no_strip:
        subprocess.run(["strip", "-o", exe, a.binary], check=True)
    else:
        shutil.copyfile(a.binary, exe)
    layer = Layer()
    layer.file("/usr/local/bin/lifeboat", exe)
    layer.with_libraries(a.binary)
    ca = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(ca):
        layer.file(ca, ca, 0o644)
    passwd_files(layer, [("nonroot", USER, "/home/nonroot")])
    layer.dir("/tmp", 0o1777)
    layer.dir("/home/nonroot", 0o755, USER)
    config = {
        "User": f"{USER}:{USER}",
        "Entrypoint": ["/usr/local/bin/lifeboat"],
        "Cmd": ["server"],
        "Env": [
            "PATH=/usr/local/bin",
            "HOME=/home/nonroot",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        ],
        "WorkingDir": "/home/nonroot",
    }
    return layer, config, version_of(a.binary), architecture_of(a.binary)


def pause_layer(a, work):
    if not a.source or not os.path.isfile(a.source):
        sys.exit("--image pause needs --source: build/pause/linux/pause.c of the kubernetes source")
    version = "3.4"
    exe = os.path.join(work, "pause")
    cflags = ["-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}-lifeboat"]
    subprocess.run(["gcc", *cflags, "-o", exe, a.source], check=True)
    subprocess.run(["strip", exe], check=True)
    layer = Layer()
    layer.file("/pause", exe)
    return layer, {"User": "65535:65535", "Entrypoint": ["/pause"]}, version, architecture_of(exe)


def busybox_into(layer, bindir):
    """Debian's busybox-static and its applet links under `bindir`; returns its version."""
    busybox = "/bin/busybox"
    if not os.path.exists(busybox) or shared_libraries(busybox):
        sys.exit("/bin/busybox is not Debian's busybox-static: apt-get install busybox-static")
    layer.file(f"{bindir}/busybox", busybox)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            layer.link(f"{bindir}/{applet}", "busybox")
    words = subprocess.run([busybox], capture_output=True, text=True).stdout.split()
    return words[1].lstrip("v") if len(words) > 1 else "dev"


def busybox_layer(a, work):
    layer = Layer()
    version = busybox_into(layer, "/bin")
    passwd_files(layer, [("nobody", 65534, "/home")])
    layer.dir("/tmp", 0o1777)
    layer.dir("/root", 0o700)
    return layer, {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, version, architecture_of("/bin/busybox")


POSTGRES_ENTRYPOINT = r"""#!/bin/sh
# Makes the database cluster in $PGDATA when it is empty, then runs postgres in front.
# PGDATA is a directory below the volume's mount point (the volume's root belongs to root;
# a directory the server makes there is its own, mode 0700 as postgres demands).
set -e
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=""
  if [ -n "$POSTGRES_PASSWORD" ]; then
    pwfile=/tmp/pgpass.$$
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  fi
  auth=${POSTGRES_HOST_AUTH:-scram-sha-256}
  initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --encoding=UTF8 --no-locale \
    ${pwfile:+--pwfile="$pwfile"} --auth-local=trust --auth-host="$auth" >/dev/null
  [ -z "$pwfile" ] || rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 $auth" >>"$PGDATA/pg_hba.conf"
  if [ -n "$POSTGRES_DB" ] && [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
"""


def walk_into(layer, root, mode_of):
    for dirpath, _, names in os.walk(root):
        for n in names:
            path = os.path.join(dirpath, n)
            if os.path.islink(path):
                layer.link(path, os.readlink(path))
            else:
                layer.file(path, path, mode_of(path))


def postgres_layer(a, work):
    lib = "/usr/lib/postgresql"
    if not os.path.isdir(lib):
        sys.exit("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    major = sorted((v for v in os.listdir(lib) if v.isdigit()), key=int)[-1]
    root = f"{lib}/{major}"
    layer = Layer()
    busybox_into(layer, "/usr/local/sbin")
    layer.link("/bin/sh", "/usr/local/sbin/busybox")
    walk_into(layer, root, lambda p: 0o755 if os.access(p, os.X_OK) else 0o644)
    # Without the JIT (LLVM is most of the size; postgres runs without it, jit = off).
    for path in [p for p in layer.entries if "/llvmjit" in p or "/bitcode/" in p or p.endswith("/bitcode")]:
        del layer.entries[path]
    for path in [p for p, e in layer.entries.items() if e[0] == "file" and p.startswith(root)]:
        if os.access(path, os.X_OK) or path.endswith(".so"):
            layer.with_libraries(path)
    walk_into(layer, f"/usr/share/postgresql/{major}", lambda p: 0o644)
    walk_into(layer, "/usr/share/zoneinfo", lambda p: 0o644)
    layer.data("/usr/local/bin/docker-entrypoint.sh", POSTGRES_ENTRYPOINT.encode(), 0o755)
    passwd_files(layer, [("postgres", 999, "/var/lib/postgresql")])
    layer.dir("/tmp", 0o1777)
    layer.dir("/var/lib/postgresql", 0o755, 999)
    out = subprocess.run([f"{root}/bin/postgres", "--version"], capture_output=True, text=True, check=True)
    config = {
        "User": "999:999",
        "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"],
        "Env": [
            f"PATH=/usr/local/bin:{root}/bin:/usr/local/sbin",
            "PGDATA=/var/lib/postgresql/data/pgdata",
            "TZ=UTC",
            "LANG=C.UTF-8",
        ],
        "ExposedPorts": {"5432/tcp": {}},
        "WorkingDir": "/var/lib/postgresql",
    }
    return layer, config, out.stdout.split()[2], architecture_of(f"{root}/bin/postgres")


RECIPES = {"lifeboat": lifeboat_layer, "pause": pause_layer, "busybox": busybox_layer, "postgres": postgres_layer}


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
    ap.add_argument("--image", choices=sorted(RECIPES), default="lifeboat")
    ap.add_argument("--binary", help="the lifeboat binary (--image lifeboat)")
    ap.add_argument("--source", help="pause.c (--image pause)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", action="append", help="repo:tag (default IMAGE:VERSION and IMAGE:latest; localhost/ before all but lifeboat)")
    ap.add_argument("--no-strip", action="store_true")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as work:
        layer, image_config, version, arch = RECIPES[a.image](a, work)
        default_tags = [f"{a.image}:{version}", f"{a.image}:latest"]
        if a.image != "lifeboat":
            default_tags = [f"localhost/{t}" for t in default_tags]
        tags = [":".join(split_tag(t)) for t in (a.tag or default_tags)]
        image_config.setdefault("Labels", {}).update(
            {"org.opencontainers.image.title": a.image, "org.opencontainers.image.version": version}
        )
        layer_gz, diff_id = layer.write(work)
        layer_digest = sha256_file(layer_gz)
        config = {
            "architecture": arch,
            "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created_by": f"scripts/build-image.py --image {a.image}"}],
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
