#!/usr/bin/env bash
# A real Kubernetes 1.20 control plane for development and tests:
# etcd + kube-apiserver + kube-controller-manager, built from Debian's `kubernetes`
# source package (see ../shared/control-plane.md) and cached, so a warm machine starts
# one in a few seconds. Several instances run side by side on distinct ports.
#
#   scripts/dev-cluster.sh build                 build (or reuse) the cached binaries
#   scripts/dev-cluster.sh up   [NAME] [PORT] [--nodes N]
#                                                start instance NAME (default: dev) with
#                                                the API server on PORT (default: 16443);
#                                                etcd takes PORT+1 and PORT+2. With N > 0
#                                                (default 0), kube-scheduler and N real
#                                                nodes (kubelet + containerd + kube-proxy,
#                                                see scripts/dev-node.sh) run pods
#   scripts/dev-cluster.sh images NAME [FILE...] import the dev images (or the image
#                                                tarballs FILE) into every node of NAME
#   scripts/dev-cluster.sh down [NAME]           stop instance NAME (only its own PIDs;
#                                                its nodes' pods first)
#   scripts/dev-cluster.sh kubeconfig [NAME]     print the path of NAME's admin kubeconfig
#   scripts/dev-cluster.sh status [NAME]         exit 0 when NAME is up and ready
#   scripts/dev-cluster.sh bindir                print the directory of the cached binaries
#   scripts/dev-cluster.sh hostip [NAME]         print the address at which NAME's nodes and
#                                                pods reach the host's loopback ports
#   scripts/dev-cluster.sh sockets [NAME]        print NAME's nodes' containerd sockets (a:b)
#
# Environment: LIFEBOAT_CACHE (default ~/.cache/lifeboat) holds the built binaries;
# LIFEBOAT_DEV_HOME (default ~/.local/share/lifeboat/dev-clusters) holds each instance's
# data, certificates, logs and kubeconfig. Everything listens on 127.0.0.1 only.
set -euo pipefail

K8S_VERSION=1.20.2
CACHE=${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}
BIN=$CACHE/control-plane-$K8S_VERSION/bin
DEV_HOME=${LIFEBOAT_DEV_HOME:-$HOME/.local/share/lifeboat/dev-clusters}

# shellcheck source=dev-node.sh
source "$(dirname "${BASH_SOURCE[0]}")/dev-node.sh"

log() { printf '[dev-cluster] %s\n' "$*" >&2; }
die() { printf '[dev-cluster] error: %s\n' "$*" >&2; exit 1; }

need_root_apt() {
  # Installs Debian packages only when a command is missing.
  local missing=()
  for pair in "$@"; do
    local cmd=${pair%%:*} pkg=${pair#*:}
    if [[ $cmd == /* ]]; then [[ -e $cmd ]] || missing+=("$pkg"); else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    if [[ ! -f /var/lib/apt/lists/.lifeboat-updated ]]; then
      apt-get update -qq && touch /var/lib/apt/lists/.lifeboat-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

cmd_build() {
  if [[ -x $BIN/kube-apiserver && -x $BIN/kube-controller-manager && -x $BIN/kube-scheduler &&
    -x $BIN/kubelet && -x $BIN/kube-proxy && -f $BIN/.reflect2-fixed ]]; then
    log "cached control plane at $BIN"
    need_root_apt etcd:etcd-server etcdctl:etcd-client openssl:openssl
    return 0
  fi
  need_root_apt go:golang-go rsync:rsync jq:jq dpkg-source:dpkg-dev etcd:etcd-server etcdctl:etcd-client \
    openssl:openssl /usr/share/gocode/src/github.com/modern-go/reflect2:golang-github-modern-go-reflect2-dev
  if ! ls /etc/apt/sources.list.d/*src* >/dev/null 2>&1; then
    log "adding deb-src entries derived from the existing sources"
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      >/etc/apt/sources.list.d/debian-src.sources
    apt-get update -qq
    touch /var/lib/apt/lists/.lifeboat-updated
  fi
  local work=$CACHE/src
  mkdir -p "$work"
  (
    cd "$work"
    if ! ls kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
      log "downloading Debian's kubernetes source package"
      apt-get source --download-only kubernetes >/dev/null
    fi
    if [[ ! -d kubernetes-$K8S_VERSION ]]; then
      log "unpacking"
      tar xzf kubernetes_*.orig.tar.gz
    fi
    cd "kubernetes-$K8S_VERSION"
    # The vendored reflect2 v1.0.1 links runtime.mapiterinit with its pre-Go-1.18
    # signature; the apiserver then segfaults on the first custom resource. Swap in 1.0.2.
    local r2=vendor/github.com/modern-go/reflect2
    if [[ ! -f $r2/go_above_118.go ]]; then
      log "swapping vendored reflect2 for Debian's 1.0.2"
      rm -rf "$r2" && mkdir -p "$r2"
      cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
        /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$r2/"
    fi
    mkdir -p .go/src/k8s.io
    ln -sfn ../../.. .go/src/k8s.io/kubernetes
    mkdir -p "$work/home"
    local what="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy"
    log "building ${what//cmd\//} (several minutes on a cold cache)"
    env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$work/home" \
      make WHAT="$what" >"$work/build.log" 2>&1 ||
      { tail -40 "$work/build.log" >&2; die "build failed; full log in $work/build.log"; }
    mkdir -p "$BIN"
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager _output/bin/kube-scheduler \
      _output/bin/kubelet _output/bin/kube-proxy "$BIN/"
    touch "$BIN/.reflect2-fixed"
  )
  log "built into $BIN"
}

inst_dir() { echo "$DEV_HOME/${1:-dev}"; }

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The API server's serving certificate: for 127.0.0.1 (the host), and for the names and
# addresses pods use (the `kubernetes` Service's 10.96.0.1, the cluster's host address).
apiserver_cert() {
  local d=$1 port=$2
  if [[ -f $d/pki/apiserver.crt ]] && openssl x509 -in "$d/pki/apiserver.crt" -noout -text 2>/dev/null | grep -q "IP Address:10.96.0.1"; then
    return 0
  fi
  (
    cd "$d/pki"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key \
      -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
      "$(cluster_host_ip "$port")" >ext.cnf
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile ext.cnf -out apiserver.crt 2>/dev/null
    rm -f apiserver.csr
    chmod 600 apiserver.key
  )
}

gen_certs() {
  local d=$1 port=$2
  mkdir -p "$d/pki"
  if [[ ! -f $d/pki/ca.crt ]]; then
    (
      cd "$d/pki"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lifeboat-dev-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
      chmod 600 ca.key
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
      # Static tokens: an admin, and a user with no RBAC bindings (for "forbidden" tests).
      printf '%s,admin,admin,system:masters\n%s,nobody,nobody\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" >tokens.csv
      chmod 600 tokens.csv
    )
  fi
  apiserver_cert "$d" "$port"
  # The API server's client certificate for kubelets (exec, logs, port-forward).
  node_client_cert "$d" kube-apiserver-kubelet-client system:masters "$d/pki/apiserver-kubelet-client"
}

write_kubeconfig() {
  local d=$1 port=$2 user=$3 token=$4 out=$5
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lifeboat-$(basename "$d")
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $d/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: lifeboat-$(basename "$d")
  context:
    cluster: lifeboat-$(basename "$d")
    user: $user
current-context: lifeboat-$(basename "$d")
EOF
}

cmd_up() {
  local args=() nodes=0
  while (($#)); do
    case $1 in
      --nodes) nodes=${2:?--nodes needs a number}; shift 2 ;;
      --nodes=*) nodes=${1#--nodes=}; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [[ $nodes =~ ^[0-9]+$ ]] || die "--nodes takes a number, not '$nodes'"
  local name=${args[0]:-dev} port=${args[1]:-16443}
  local d
  d=$(inst_dir "$name")
  if cmd_status "$name" 2>/dev/null; then
    log "instance '$name' already up; kubeconfig: $d/kubeconfig"
    ((nodes > 0)) && cmd_nodes_up "$name" "$(cat "$d/port")" "$nodes"
    echo "$d/kubeconfig"
    return 0
  fi
  cmd_build
  mkdir -p "$d/logs"
  gen_certs "$d" "$port"
  local etcd_port=$((port + 1)) peer_port=$((port + 2))
  echo "$port" >"$d/port"
  local admin_token nobody_token
  admin_token=$(awk -F, '$2=="admin"{print $1}' "$d/pki/tokens.csv")
  nobody_token=$(awk -F, '$2=="nobody"{print $1}' "$d/pki/tokens.csv")
  write_kubeconfig "$d" "$port" admin "$admin_token" "$d/kubeconfig"
  write_kubeconfig "$d" "$port" nobody "$nobody_token" "$d/kubeconfig-nobody"

  if ! pid_alive "$d/etcd.pid"; then
    etcd --name "lifeboat-$name" --data-dir "$d/etcd" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-cluster "lifeboat-$name=http://127.0.0.1:$peer_port" \
      --quota-backend-bytes=8589934592 >"$d/logs/etcd.log" 2>&1 &
    echo $! >"$d/etcd.pid"
  fi
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null || die "etcd did not start; see $d/logs/etcd.log"

  if ! pid_alive "$d/apiserver.pid"; then
    "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" --bind-address=127.0.0.1 \
      --secure-port="$port" --tls-cert-file="$d/pki/apiserver.crt" --tls-private-key-file="$d/pki/apiserver.key" \
      --client-ca-file="$d/pki/ca.crt" \
      --token-auth-file="$d/pki/tokens.csv" --authorization-mode=Node,RBAC \
      --kubelet-client-certificate="$d/pki/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$d/pki/apiserver-kubelet-client.key" --kubelet-preferred-address-types=InternalIP \
      --service-account-key-file="$d/pki/sa.pub" --service-account-signing-key-file="$d/pki/sa.key" \
      --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.96.0.0/16 \
      --advertise-address="$(cluster_host_ip "$port")" --allow-privileged=true \
      --max-requests-inflight=800 --max-mutating-requests-inflight=400 >"$d/logs/apiserver.log" 2>&1 &
    echo $! >"$d/apiserver.pid"
  fi
  local auth=(-H "Authorization: Bearer $admin_token" --cacert "$d/pki/ca.crt")
  for _ in $(seq 1 300); do
    curl -sf "${auth[@]}" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    pid_alive "$d/apiserver.pid" || die "kube-apiserver exited; see $d/logs/apiserver.log"
    sleep 0.2
  done

  if ! pid_alive "$d/controller-manager.pid"; then
    "$BIN/kube-controller-manager" --kubeconfig="$d/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --port=0 \
      --service-account-private-key-file="$d/pki/sa.key" --root-ca-file="$d/pki/ca.crt" --leader-elect=false \
      --controllers='*,-nodeipam,-nodelifecycle,-attachdetach,-persistentvolume-binder,-cloud-node-lifecycle' \
      >"$d/logs/controller-manager.log" 2>&1 &
    echo $! >"$d/controller-manager.pid"
  fi
  # /readyz answers before namespace `default` and its ServiceAccount exist: wait for those.
  for _ in $(seq 1 300); do
    curl -sf "${auth[@]}" "https://127.0.0.1:$port/api/v1/namespaces/default/serviceaccounts/default" >/dev/null 2>&1 && break
    pid_alive "$d/apiserver.pid" || die "kube-apiserver exited; see $d/logs/apiserver.log"
    sleep 0.2
  done
  cmd_status "$name" || die "instance '$name' did not become ready; logs in $d/logs"
  log "instance '$name' up on https://127.0.0.1:$port; kubeconfig: $d/kubeconfig"
  ((nodes > 0)) && cmd_nodes_up "$name" "$port" "$nodes"
  echo "$d/kubeconfig"
}

cmd_nodes_up() {
  local name=$1 port=$2 nodes=$3 d i
  d=$(inst_dir "$name")
  node_packages
  images_build
  cluster_node_parts_up "$d"
  for ((i = 0; i < nodes; i++)); do node_up "$d" "$name" "$port" "$i"; done
  for ((i = 0; i < nodes; i++)); do node_wait_ready "$d" "$port" "$(node_name "$name" "$i")"; done
  log "instance '$name': $nodes node(s) Ready"
}

cmd_images() {
  local name=${1:?images needs an instance name} d nd
  shift
  d=$(inst_dir "$name")
  for nd in "$d"/nodes/*/; do
    pid_alive "$nd/containerd.pid" || continue
    images_import "$nd/containerd.sock" "$@"
    log "imported into $(basename "$nd")"
  done
}

cmd_status() {
  local name=${1:-dev} d
  d=$(inst_dir "$name")
  [[ -f $d/port && -f $d/kubeconfig ]] || return 1
  pid_alive "$d/apiserver.pid" && pid_alive "$d/etcd.pid" && pid_alive "$d/controller-manager.pid" || return 1
  local token
  token=$(awk -F, '$2=="admin"{print $1}' "$d/pki/tokens.csv")
  curl -sf -H "Authorization: Bearer $token" --cacert "$d/pki/ca.crt" \
    "https://127.0.0.1:$(cat "$d/port")/api/v1/namespaces/default/serviceaccounts/default" >/dev/null
}

stop_pid() {
  local f=$1
  if pid_alive "$f"; then
    local pid
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_down() {
  local name=${1:-dev} d
  d=$(inst_dir "$name")
  nodes_down "$d"
  stop_pid "$d/controller-manager.pid"
  stop_pid "$d/apiserver.pid"
  stop_pid "$d/etcd.pid"
  if [[ ${2:-} == --purge ]]; then rm -rf "$d"; fi
  log "instance '$name' down"
}

case ${1:-} in
  build) cmd_build ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  images) shift; cmd_images "$@" ;;
  hostip) cluster_host_ip "$(cat "$(inst_dir "${2:-dev}")/port")" ;;
  sockets) ls "$(inst_dir "${2:-dev}")"/nodes/*/containerd.sock 2>/dev/null | paste -sd: ;;
  kubeconfig) echo "$(inst_dir "${2:-dev}")/kubeconfig" ;;
  bindir) echo "$BIN" ;;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
