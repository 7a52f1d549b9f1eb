# Real nodes for the dev cluster: sourced by scripts/dev-cluster.sh (not run on its own).
#
# A node is what a machine of a real cluster is, made of the same parts:
#   - its own network namespace (lifeboat-node-<slot>), joined to the host by a veth pair
#     (host side 10.251.x.y/30, node side its InternalIP); pods live on a CNI bridge inside
#     it (Debian's containernetworking-plugins: bridge + host-local + portmap), so each node
#     has its own iptables, bridge and kube-proxy, and two clusters never touch each other;
#   - its own containerd (Debian's 1.6, CRI v1alpha2 for a 1.20 kubelet) with its own root,
#     state, sockets and runc root, started in a mount namespace of its own in which
#     /var/log/pods, /var/log/containers and /var/lib/kubelet/device-plugins are the
#     node's own directories (a 1.20 kubelet hard-codes those and deletes what it does not
#     know, so two kubelets must never see each other's);
#   - a kubelet and a kube-proxy built from the same Debian source as the control plane,
#     entering that namespace; the kubelet authenticates with a client certificate
#     (CN system:node:<name>, O system:nodes) and serves the API server (exec, logs,
#     port-forward) over TLS, checking the API server's own client certificate;
#   - its own cgroup root (/lifeboat-node-<slot> in every v1 hierarchy).
# A slot is a number taken atomically under /run/lifeboat-dev-nodes for each node of every
# dev cluster on the machine: names, addresses, bridges and cgroups come from it, so
# clusters of different names or LIFEBOAT_DEV_HOMEs never share one.
# The nodes reach the API server, and pods reach it through the `kubernetes` Service, at
# the cluster's host address (10.250.x.y, from the API port): the host rewrites that
# address to its loopback (DNAT + route_localnet on the node's veth only), so every server
# still listens on 127.0.0.1 alone. The same address reaches any loopback port of the host
# (an S3 server a test started, say): the dev cluster's "host.docker.internal".
#
# Not here: a cloud provider, a CSI driver, cluster DNS (pods resolve as the host does;
# reach Services by ClusterIP), and a registry (images are imported: scripts/dev-images.sh).

NODE_SLOTS=/run/lifeboat-dev-nodes

# The host address of the cluster whose API server listens on port $1.
cluster_host_ip() { echo "10.250.$(($1 / 256 % 256)).$(($1 % 256))"; }

node_name() { echo "$1-node-$2"; }

# Writes stdin to $1 only when it differs: kube-proxy exits when its config file changes,
# and `up` on a running node must leave it alone.
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# An allocation of a slot number (0..1023) for a node, atomic across clusters.
node_slot_alloc() {
  local nd=$1 k
  if [[ -f $nd/slot ]] && [[ $(cat "$NODE_SLOTS/$(cat "$nd/slot")/owner" 2>/dev/null) == "$nd" ]]; then
    cat "$nd/slot"
    return 0
  fi
  mkdir -p "$NODE_SLOTS"
  for k in $(seq 0 1023); do
    if mkdir "$NODE_SLOTS/$k" 2>/dev/null; then
      echo "$nd" >"$NODE_SLOTS/$k/owner"
      echo "$k" >"$nd/slot"
      echo "$k"
      return 0
    fi
  done
  die "no free node slot under $NODE_SLOTS"
}

# Addresses of slot $1: host side, node side of the veth pair, the pod subnet.
slot_host_ip() { echo "10.251.$(($1 / 64)).$(($1 % 64 * 4 + 1))"; }
slot_node_ip() { echo "10.251.$(($1 / 64)).$(($1 % 64 * 4 + 2))"; }
slot_pod_subnet() { echo "10.$((244 + $1 / 256)).$(($1 % 256)).0/24"; }

# Creates the node's certificate $3 (CN $1, O $2) signed by the cluster's CA.
node_client_cert() {
  local d=$1 cn=$2 org=$3 out=$4
  [[ -f $out.crt ]] && return 0
  local subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org/CN=$cn"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$out.key" -out "$out.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$out.ext"
  openssl x509 -req -in "$out.csr" -CA "$d/pki/ca.crt" -CAkey "$d/pki/ca.key" -CAcreateserial -days 3650 \
    -extfile "$out.ext" -out "$out.crt" 2>/dev/null
  rm -f "$out.csr" "$out.ext"
  chmod 600 "$out.key"
}

node_kubeconfig() {
  local d=$1 server=$2 cert=$3 out=$4
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lifeboat
  cluster:
    server: $server
    certificate-authority: $d/pki/ca.crt
    tls-server-name: localhost
users:
- name: node
  user:
    client-certificate: $cert.crt
    client-key: $cert.key
contexts:
- name: lifeboat
  context: {cluster: lifeboat, user: node}
current-context: lifeboat
EOF
  chmod 600 "$out"
}

# The cgroup root of a node must exist in every v1 hierarchy before its kubelet starts,
# with cpuset's cpus and mems filled in.
node_cgroups_create() {
  local root=$1 h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h && ! -L ${h%/} ]] || continue
    [[ $h == */unified/ ]] && continue
    mkdir -p "$h$root"
    if [[ -f ${h}cpuset.cpus ]]; then
      cat "${h}cpuset.cpus" >"$h$root/cpuset.cpus"
      cat "${h}cpuset.mems" >"$h$root/cpuset.mems"
    fi
  done
}

node_cgroups_remove() {
  local root=$1 h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h$root ]] || continue
    find "$h$root" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# Host side of a node's network: the cluster address rewritten to loopback for packets
# from this node's veth, and for the host itself.
node_host_nat() {
  local action=$1 veth=$2 cip=$3
  local rule=(PREROUTING -i "$veth" -d "$cip" -p tcp -j DNAT --to-destination 127.0.0.1 -m comment --comment "lifeboat-dev $veth")
  if [[ $action == add ]]; then
    iptables -t nat -C "${rule[@]}" 2>/dev/null || iptables -t nat -A "${rule[@]}"
  else
    while iptables -t nat -D "${rule[@]}" 2>/dev/null; do :; done
  fi
}

cluster_host_nat() {
  local action=$1 cip=$2
  local rule=(OUTPUT -d "$cip" -p tcp -j DNAT --to-destination 127.0.0.1 -m comment --comment "lifeboat-dev cluster $cip")
  if [[ $action == add ]]; then
    iptables -t nat -C "${rule[@]}" 2>/dev/null || iptables -t nat -A "${rule[@]}"
  else
    while iptables -t nat -D "${rule[@]}" 2>/dev/null; do :; done
  fi
}

node_packages() {
  need_root_apt containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
    iptables:iptables ip:iproute2 nsenter:util-linux conntrack:conntrack
  local v
  v=$(containerd --version | awk '{print $3}')
  case $v in
    1.6.* | 1.7.*) ;;
    *) die "containerd $v: a 1.20 kubelet needs the CRI v1alpha2 API of containerd 1.6/1.7 (Debian 12's package), not $v" ;;
  esac
}

# Cluster-level parts that only nodes need: kube-scheduler, and a second
# kube-controller-manager with the node lifecycle (removes the not-ready taint, marks
# silent nodes Unknown) and PersistentVolume binding controllers.
cluster_node_parts_up() {
  local d=$1
  if ! pid_alive "$d/scheduler.pid"; then
    "$BIN/kube-scheduler" --kubeconfig="$d/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --port=0 \
      --leader-elect=false >"$d/logs/scheduler.log" 2>&1 &
    echo $! >"$d/scheduler.pid"
  fi
  if ! pid_alive "$d/node-controllers.pid"; then
    "$BIN/kube-controller-manager" --kubeconfig="$d/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --port=0 \
      --leader-elect=false --controllers=nodelifecycle,persistentvolume-binder \
      >"$d/logs/node-controllers.log" 2>&1 &
    echo $! >"$d/node-controllers.pid"
  fi
}

cluster_node_parts_down() {
  local d=$1
  stop_pid "$d/scheduler.pid"
  stop_pid "$d/node-controllers.pid"
}

# node_up DIR CLUSTER PORT INDEX: starts node INDEX of the cluster (idempotent).
node_up() {
  local d=$1 name=$2 port=$3 i=$4
  local node nd slot hip nip subnet ns veth cip cgroot
  node=$(node_name "$name" "$i")
  nd=$d/nodes/$node
  mkdir -p "$nd/logs" "$nd/log-pods" "$nd/log-containers" "$nd/device-plugins" "$nd/cni" "$nd/kubelet" "$nd/pki"
  chmod 700 "$nd"
  slot=$(node_slot_alloc "$nd")
  hip=$(slot_host_ip "$slot")
  nip=$(slot_node_ip "$slot")
  subnet=$(slot_pod_subnet "$slot")
  # Named by the slot: unique across every dev cluster on the machine, whatever their
  # names or LIFEBOAT_DEV_HOME (two test runs both have an `it-node`).
  ns=lifeboat-node-$slot
  veth=lbv$slot
  cip=$(cluster_host_ip "$port")
  cgroot=/lifeboat-node-$slot
  echo "$ns" >"$nd/netns"
  echo "$cgroot" >"$nd/cgroup-root"

  # Network: namespace, veth, routes, the host's NAT of the cluster address.
  if [[ ! -e /run/netns/$ns ]]; then
    ip netns add "$ns"
  fi
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip addr add "$hip/30" dev "$veth"
    ip link set "$veth" up
    ip -n "$ns" addr add "$nip/30" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$hip"
  fi
  ip route replace "$subnet" via "$nip" dev "$veth"
  sysctl -qw "net.ipv4.conf.$veth.route_localnet=1"
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  # Pods talking to a Service whose endpoint is on the same bridge need bridged packets
  # to pass iptables (per network namespace since Linux 5.3).
  ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  node_host_nat add "$veth" "$cip"
  cluster_host_nat add "$cip"

  node_cgroups_create "$cgroot"

  # Certificates and kubeconfigs.
  node_client_cert "$d" "system:node:$node" system:nodes "$nd/pki/kubelet-client"
  node_client_cert "$d" system:kube-proxy "" "$nd/pki/kube-proxy"
  node_kubeconfig "$d" "https://$cip:$port" "$nd/pki/kubelet-client" "$nd/kubelet.kubeconfig"
  node_kubeconfig "$d" "https://$cip:$port" "$nd/pki/kube-proxy" "$nd/kube-proxy.kubeconfig"

  write_if_changed "$nd/cni/10-lifeboat.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lifeboat",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$nd/cni-ipam", "ranges": [[{"subnet": "$subnet"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  write_if_changed "$nd/containerd.toml" <<EOF
version = 2
root = "$nd/containerd/root"
state = "$nd/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$nd/containerd.sock"
[ttrpc]
  address = "$nd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$nd/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$nd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$nd/cni"
EOF

  mkdir -p /var/log/pods /var/log/containers /var/lib/kubelet/device-plugins
  if ! pid_alive "$nd/containerd.pid"; then
    rm -f "$nd/containerd.sock"
    nsenter --net="/run/netns/$ns" unshare --mount --propagation slave sh -c '
      mount --bind "$1/log-pods" /var/log/pods &&
      mount --bind "$1/log-containers" /var/log/containers &&
      mount --bind "$1/device-plugins" /var/lib/kubelet/device-plugins &&
      exec containerd --config "$1/containerd.toml"' sh "$nd" >"$nd/logs/containerd.log" 2>&1 &
    echo $! >"$nd/containerd.pid"
    for _ in $(seq 1 100); do [[ -S $nd/containerd.sock ]] && break; sleep 0.1; done
    [[ -S $nd/containerd.sock ]] || die "containerd of $node did not start; see $nd/logs/containerd.log"
  fi
  local cpid
  cpid=$(cat "$nd/containerd.pid")
  images_import "$nd/containerd.sock"

  write_if_changed "$nd/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $nip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: $cgroot
failSwapOn: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
maxPods: 60
EOF
  if ! pid_alive "$nd/kubelet.pid"; then
    date -u +%Y-%m-%dT%H:%M:%SZ >"$nd/kubelet.started"
    sleep 1
    nsenter --mount="/proc/$cpid/ns/mnt" --net="/proc/$cpid/ns/net" -- "$BIN/kubelet" \
      --config="$nd/kubelet.yaml" --kubeconfig="$nd/kubelet.kubeconfig" --root-dir="$nd/kubelet" \
      --cert-dir="$nd/pki" --hostname-override="$node" --node-ip="$nip" \
      --container-runtime=remote --container-runtime-endpoint="unix://$nd/containerd.sock" \
      --image-service-endpoint="unix://$nd/containerd.sock" --pod-infra-container-image="$PAUSE_IMAGE" \
      --v=1 >"$nd/logs/kubelet.log" 2>&1 &
    echo $! >"$nd/kubelet.pid"
  fi

  write_if_changed "$nd/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $nd/kube-proxy.kubeconfig}
hostnameOverride: $node
bindAddress: $nip
clusterCIDR: $subnet
mode: iptables
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
EOF
  if ! pid_alive "$nd/kube-proxy.pid"; then
    nsenter --mount="/proc/$cpid/ns/mnt" --net="/proc/$cpid/ns/net" -- "$BIN/kube-proxy" \
      --config="$nd/kube-proxy.yaml" >"$nd/logs/kube-proxy.log" 2>&1 &
    echo $! >"$nd/kube-proxy.pid"
  fi
}

# Waits until node $3 reports Ready with a heartbeat newer than its kubelet's start (a Node
# object left from an earlier run may already say Ready).
node_wait_ready() {
  local d=$1 port=$2 node=$3 nd=$d/nodes/$3 token started
  token=$(awk -F, '$2=="admin"{print $1}' "$d/pki/tokens.csv")
  started=$(cat "$nd/kubelet.started")
  for _ in $(seq 1 240); do
    pid_alive "$nd/kubelet.pid" || die "the kubelet of $node exited; see $nd/logs/kubelet.log"
    pid_alive "$nd/containerd.pid" || die "containerd of $node exited; see $nd/logs/containerd.log"
    local json
    json=$(curl -sf -H "Authorization: Bearer $token" --cacert "$d/pki/ca.crt" \
      "https://127.0.0.1:$port/api/v1/nodes/$node" 2>/dev/null || true)
    if [[ -n $json ]] && python3 -c '
import json, sys
node = json.load(sys.stdin)
ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
sys.exit(0 if ready and ready[0]["status"] == "True" and ready[0]["lastHeartbeatTime"] > sys.argv[1] else 1)
' "$started" <<<"$json"; then
      return 0
    fi
    sleep 0.5
  done
  die "node $node did not become Ready in 2 minutes; see $nd/logs/kubelet.log"
}

# node_down DIR NODE: stops the node's processes by PID, removes its pods' containers
# (through containerd, before stopping it), and undoes its network and cgroups.
node_down() {
  local d=$1 node=$2 nd=$d/nodes/$2
  [[ -d $nd ]] || return 0
  stop_pid "$nd/kube-proxy.pid"
  stop_pid "$nd/kubelet.pid"
  if pid_alive "$nd/containerd.pid"; then
    local c ctr=(ctr -a "$nd/containerd.sock" -n k8s.io)
    for c in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    done
    for c in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      for _ in $(seq 1 50); do
        "${ctr[@]}" tasks delete "$c" >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
      "${ctr[@]}" containers delete "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_pid "$nd/containerd.pid"
  # Shims outlive containerd by design: stop those of this node's containerd (their
  # command line names its socket).
  local pid
  for pid in $(pgrep -f -- "-address $nd/containerd.sock" 2>/dev/null || true); do
    kill -9 "$pid" 2>/dev/null || true
  done
  local ns veth slot cip
  ns=$(cat "$nd/netns" 2>/dev/null || true)
  slot=$(cat "$nd/slot" 2>/dev/null || true)
  if [[ -n $slot ]]; then
    veth=lbv$slot
    cip=$(cluster_host_ip "$(cat "$d/port")")
    node_host_nat del "$veth" "$cip"
    ip route del "$(slot_pod_subnet "$slot")" 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
  fi
  if [[ -n $ns && -e /run/netns/$ns ]]; then ip netns del "$ns" || true; fi
  if [[ -f $nd/cgroup-root ]]; then node_cgroups_remove "$(cat "$nd/cgroup-root")"; fi
  # Sandbox network namespaces are mounted under containerd's state dir.
  if [[ -d $nd/containerd/state ]]; then
    local m
    for m in $(awk -v p="$nd/containerd/state" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$nd/containerd/state"
  fi
  rm -rf "$nd/cni-ipam" "$nd/runc"
  if [[ -n $slot && $(cat "$NODE_SLOTS/$slot/owner" 2>/dev/null) == "$nd" ]]; then
    rm -rf "${NODE_SLOTS:?}/$slot"
  fi
  rm -f "$nd/slot"
}

nodes_down() {
  local d=$1 nd
  for nd in "$d"/nodes/*/; do
    [[ -d $nd ]] || continue
    node_down "$d" "$(basename "$nd")"
  done
  cluster_node_parts_down "$d"
  if [[ -f $d/port ]]; then
    cluster_host_nat del "$(cluster_host_ip "$(cat "$d/port")")"
  fi
}

# Images without a registry: built by scripts/build-image.py (reproducible, no daemon)
# into $CACHE/images once, imported into each node's containerd. Pods name them with
# imagePullPolicy IfNotPresent (or Never): localhost/pause:3.4, localhost/busybox:1.35.0,
# localhost/postgres:<Debian's version>, and lifeboat:<version> when a test imports it.
PAUSE_IMAGE=localhost/pause:3.4
# Keyed by build-image.py's content: a changed recipe builds the images again.
IMAGES=$CACHE/images/$(sha256sum "$(dirname "${BASH_SOURCE[0]}")/build-image.py" | cut -c1-12)

images_build() {
  need_root_apt gcc:gcc strip:binutils /bin/busybox:busybox-static python3:python3 \
    /usr/lib/postgresql:postgresql
  local script src
  script=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/build-image.py
  src=$CACHE/src/kubernetes-$K8S_VERSION/build/pause/linux/pause.c
  mkdir -p "$IMAGES"
  if [[ ! -f $IMAGES/pause.tar ]]; then
    [[ -f $src ]] || die "no $src: run 'scripts/dev-cluster.sh build' (it unpacks the kubernetes source)"
    python3 "$script" --image pause --source "$src" --out "$IMAGES/pause.tar" >&2
  fi
  local image
  for image in busybox postgres; do
    [[ -f $IMAGES/$image.tar ]] || python3 "$script" --image "$image" --out "$IMAGES/$image.tar" >&2
  done
}

# images_import SOCKET [FILE...]: the cached images (or FILEs) into one containerd.
images_import() {
  local sock=$1
  shift
  local files=("$@")
  if ((${#files[@]} == 0)); then
    images_build
    files=("$IMAGES/pause.tar" "$IMAGES/busybox.tar" "$IMAGES/postgres.tar")
  fi
  local f
  for f in "${files[@]}"; do
    ctr -a "$sock" -n k8s.io images import "$f" >/dev/null ||
      die "importing $f into $sock failed"
  done
}
