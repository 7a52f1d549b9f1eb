//! `etcd snapshot restore`: turns a snapshot file into the data directory of a new etcd
//! 3.4 cluster member, as `etcdctl snapshot restore` does, without etcd's code.
//!
//! What a restored member directory holds (`<data-dir>/member/`):
//! - `snap/db`: the snapshot's bbolt database without its sha256 trailer, with the
//!   consistent index (`meta/consistent_index`) set to the number of members — the index
//!   of the last entry of the new raft log — so that etcd applies every entry that comes
//!   after it. A database that kept the old cluster's index would silently skip the new
//!   cluster's first writes on the next restart.
//! - `snap/0000000000000001-<n>.snap`: a raft snapshot at term 1, index n (one per
//!   member) whose data is the v2 store holding the new membership, and whose conf state
//!   names the new voters.
//! - `wal/0000000000000000-0000000000000000.wal`: a WAL with the
//!   member and cluster ids, one ConfChangeAddNode entry per member, the hard state
//!   (term 1, commit n) and the snapshot marker, preallocated to 64 MB.
//!
//! Member and cluster ids are derived exactly as etcd derives them (SHA-1 of the sorted
//! peer URLs and the cluster token; SHA-1 of the sorted member ids), so the WAL, the snap
//! file and the membership are byte-for-byte what etcdctl 3.4 writes for the same flags.
//! One deliberate difference: etcdctl 3.4 means to clear the old members from the
//! database's `members`/`members_removed` buckets but does not (its delete goes through
//! the key-value store instead); here both buckets hold exactly the new members, as etcd
//! 3.5's `etcdutl snapshot restore` writes them. etcd 3.4 reads membership from the v2
//! store, so both start the same; 3.5 and later read the buckets.
//!
//! Invariant: nothing appears under the data directory's `member/` until every file is
//! written and synced; a failed restore removes what it staged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::bolt_write::{self, Edit, Edits};
use super::snapshot::{self, Db, SnapshotError, Status};

/// etcd's WAL segment size (64 MB, decimal): the first segment is preallocated to it.
const WAL_SEGMENT_BYTES: u64 = 64 * 1000 * 1000;
/// The v2 store's event history capacity.
const EVENT_HISTORY: usize = 1000;

/// What to restore and the new cluster's membership (the settings of `etcdctl snapshot
/// restore`), with etcdctl's defaults.
#[derive(Debug, Clone)]
pub struct RestoreConfig {
    /// The snapshot file.
    pub snapshot: PathBuf,
    /// The data directory to create (or an empty existing one).
    pub data_dir: PathBuf,
    /// A separate WAL directory (default `<data-dir>/member/wal`).
    pub wal_dir: Option<PathBuf>,
    /// This member's name.
    pub name: String,
    /// `name=url[,name=url...]`, every member of the new cluster.
    pub initial_cluster: String,
    /// The token the member ids are derived from.
    pub initial_cluster_token: String,
    /// This member's peer URLs (must match its entry in `initial_cluster`).
    pub initial_advertise_peer_urls: String,
    /// Accept a file without a (valid) sha256 trailer, such as a copied `member/snap/db`.
    pub skip_hash_check: bool,
}

impl RestoreConfig {
    /// etcdctl's defaults for a snapshot file.
    pub fn new(snapshot: PathBuf) -> Self {
        RestoreConfig {
            snapshot,
            data_dir: PathBuf::from("default.etcd"),
            wal_dir: None,
            name: "default".into(),
            initial_cluster: "default=http://localhost:2380".into(),
            initial_cluster_token: "etcd-cluster".into(),
            initial_advertise_peer_urls: "http://localhost:2380".into(),
            skip_hash_check: false,
        }
    }
}

/// Why a restore was refused or failed. Nothing is left in the data directory.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The settings do not describe a valid cluster.
    #[error(transparent)]
    Config(#[from] MembershipError),
    /// The snapshot failed its checks.
    #[error("refusing to restore {}", path.display())]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: SnapshotError,
    },
    /// The target directory already holds something.
    #[error(
        "{what} {} is not empty; restore into a new or empty directory (etcd would otherwise start on the old data)",
        path.display()
    )]
    NotEmpty {
        /// data directory or WAL directory.
        what: &'static str,
        /// The directory.
        path: PathBuf,
    },
    /// Writing the member directory failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl RestoreError {
    /// Never: the settings, the snapshot or the target directories must change first.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// One member of the restored cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// etcd's member id.
    #[serde(serialize_with = "hex_id")]
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its peer URLs, sorted.
    pub peer_urls: Vec<String>,
}

fn hex_id<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{id:x}"))
}

/// The new cluster's membership.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// etcd's cluster id.
    #[serde(serialize_with = "hex_id")]
    pub cluster_id: u64,
    /// Members, by id.
    pub members: Vec<Member>,
    /// The member this directory belongs to.
    #[serde(serialize_with = "hex_id")]
    pub local_id: u64,
}

/// What a restore produced.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// The snapshot's status (revision, keys...).
    pub snapshot: Status,
    /// The new membership.
    pub membership: Membership,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The WAL directory.
    pub wal_dir: PathBuf,
}

// ---------------------------------------------------------------- membership (pure)

/// Which setting of a [`RestoreConfig`] a [`MembershipError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// [`RestoreConfig::name`].
    Name,
    /// [`RestoreConfig::initial_cluster`].
    InitialCluster,
    /// [`RestoreConfig::initial_advertise_peer_urls`].
    InitialAdvertisePeerUrls,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Setting::Name => "the member name",
            Setting::InitialCluster => "the initial cluster",
            Setting::InitialAdvertisePeerUrls => "the member's advertised peer URLs",
        })
    }
}

/// The settings do not describe a cluster etcd would bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MembershipError {
    /// The setting to change.
    pub setting: Setting,
    /// What is wrong, naming the values.
    pub reason: String,
}

fn bad(setting: Setting, reason: String) -> MembershipError {
    MembershipError { setting, reason }
}

/// Parses and checks etcd URLs as etcd's `types.NewURLs` does; returns them sorted.
fn parse_urls(list: &str, setting: Setting) -> Result<Vec<String>, MembershipError> {
    let err = |reason: String| bad(setting, format!("{setting}: {reason}"));
    let mut out = Vec::new();
    for u in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (scheme, rest) = u
            .split_once("://")
            .ok_or_else(|| err(format!("{u:?} is not a URL (want http://HOST:PORT)")))?;
        if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
            return Err(err(format!(
                "URL scheme must be http, https, unix, or unixs: {u}"
            )));
        }
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(err(format!("URL must not contain a path: {u}")));
        }
        let has_port = match rest.rsplit_once(':') {
            Some((host, port)) => {
                !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        if !has_port {
            return Err(err(format!(
                "URL address does not have the form \"host:port\": {u}"
            )));
        }
        out.push(u.to_string());
    }
    if out.is_empty() {
        return Err(err("no URL given".into()));
    }
    out.sort();
    Ok(out)
}

/// etcd's member id: SHA-1 over the sorted peer URLs and the cluster token.
pub fn member_id(sorted_peer_urls: &[String], token: &str) -> u64 {
    let mut h = Sha1::new();
    for u in sorted_peer_urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    u64::from_be_bytes(h.finalize()[..8].try_into().unwrap_or([0; 8]))
}

/// etcd's cluster id: SHA-1 over the sorted member ids, big-endian.
pub fn cluster_id(sorted_ids: &[u64]) -> u64 {
    let mut h = Sha1::new();
    for id in sorted_ids {
        h.update(id.to_be_bytes());
    }
    u64::from_be_bytes(h.finalize()[..8].try_into().unwrap_or([0; 8]))
}

/// The new cluster from the settings, checked as etcd checks a bootstrap configuration.
pub fn membership(cfg: &RestoreConfig) -> Result<Membership, MembershipError> {
    use Setting::*;
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in cfg
        .initial_cluster
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, url) = entry.split_once('=').ok_or_else(|| {
            bad(
                InitialCluster,
                format!(
                    "the initial cluster: {entry:?} is not NAME=URL (e.g. m1=https://10.0.0.1:2380)"
                ),
            )
        })?;
        let urls = parse_urls(url, InitialCluster)?;
        by_name.entry(name.to_string()).or_default().extend(urls);
    }
    if by_name.is_empty() {
        return Err(bad(InitialCluster, "the initial cluster is empty".into()));
    }
    let mut seen = BTreeMap::new();
    for (name, urls) in &by_name {
        for u in urls {
            if let Some(other) = seen.insert(u.clone(), name.clone()) {
                return Err(bad(
                    InitialCluster,
                    format!(
                        "the initial cluster has duplicate url {u} (members {other} and {name})"
                    ),
                ));
            }
        }
    }
    let local = by_name.get(&cfg.name).ok_or_else(|| {
        bad(
            Name,
            format!(
                "couldn't find local name {:?} in the initial cluster configuration; the member name must be one of: {}",
                cfg.name,
                by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let mut local_urls = local.clone();
    local_urls.sort();
    let advertised = parse_urls(&cfg.initial_advertise_peer_urls, InitialAdvertisePeerUrls)?;
    if advertised != local_urls {
        return Err(bad(
            InitialAdvertisePeerUrls,
            format!(
                "the advertised peer URLs {} do not match the URLs of {:?} in the initial cluster ({}); they must be the same",
                advertised.join(","),
                cfg.name,
                local_urls.join(",")
            ),
        ));
    }
    let mut members: Vec<Member> = by_name
        .into_iter()
        .map(|(name, mut peer_urls)| {
            peer_urls.sort();
            Member {
                id: member_id(&peer_urls, &cfg.initial_cluster_token),
                name,
                peer_urls,
            }
        })
        .collect();
    members.sort_by_key(|m| m.id);
    if let Some(w) = members.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(bad(
            InitialCluster,
            format!(
                "members {} and {} get the same id; give them different peer URLs",
                w[0].name, w[1].name
            ),
        ));
    }
    if members.iter().any(|m| m.id == 0) {
        return Err(bad(
            InitialCluster,
            "a member id came out as 0, which raft reserves; change its peer URLs".into(),
        ));
    }
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let local_id = member_id(&local_urls, &cfg.initial_cluster_token);
    Ok(Membership {
        cluster_id: cluster_id(&ids),
        members,
        local_id,
    })
}

// ---------------------------------------------------------------- stored formats (pure)

/// Go's encoding/json string quoting (which also escapes <, > and &).
fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn go_json_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_json_string(s)).collect();
    format!("[{}]", inner.join(","))
}

impl Member {
    /// etcd's JSON of a member (`membership.Member`): raft context and `members` bucket value.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"id\":{},\"peerURLs\":{},\"name\":{}}}",
            self.id,
            go_json_list(&self.peer_urls),
            go_json_string(&self.name)
        )
    }

    /// etcd's JSON of its raft attributes, as kept in the v2 store.
    fn raft_attributes(&self) -> String {
        format!("{{\"peerURLs\":{}}}", go_json_list(&self.peer_urls))
    }
}

/// The v2 store after adding each member, serialized as etcd's `store.Save` does.
pub(crate) fn v2_store(members: &[Member]) -> Vec<u8> {
    const ZERO_TIME: &str = "\"0001-01-01T00:00:00Z\"";
    let node = |path: &str, index: usize, value: &str, children: Option<String>| {
        format!(
            "{{\"Path\":{},\"CreatedIndex\":{index},\"ModifiedIndex\":{index},\"ExpireTime\":{ZERO_TIME},\"Value\":{},\"Children\":{}}}",
            go_json_string(path),
            go_json_string(value),
            children.unwrap_or_else(|| "null".into())
        )
    };
    // Member directories are keyed by the hex id; Go sorts map keys as strings.
    let mut dirs: Vec<(String, String)> = Vec::new();
    let mut events = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let index = i + 1;
        let hex = format!("{:x}", m.id);
        let key = format!("/0/members/{hex}/raftAttributes");
        let attrs = m.raft_attributes();
        let leaf = node(&key, index, &attrs, None);
        let dir = node(
            &format!("/0/members/{hex}"),
            index,
            "",
            Some(format!("{{\"raftAttributes\":{leaf}}}")),
        );
        dirs.push((hex, dir));
        events.push(format!(
            "{{\"action\":\"create\",\"node\":{{\"key\":{},\"value\":{},\"modifiedIndex\":{index},\"createdIndex\":{index}}}}}",
            go_json_string(&key),
            go_json_string(&attrs)
        ));
    }
    dirs.sort();
    let n = members.len();
    let member_dirs: Vec<String> = dirs
        .iter()
        .map(|(hex, d)| format!("{}:{d}", go_json_string(hex)))
        .collect();
    let members_dir = node(
        "/0/members",
        1,
        "",
        Some(format!("{{{}}}", member_dirs.join(","))),
    );
    let zero = node("/0", 0, "", Some(format!("{{\"members\":{members_dir}}}")));
    let one = node("/1", 0, "", Some("{}".into()));
    let root = node("/", 0, "", Some(format!("{{\"0\":{zero},\"1\":{one}}}")));
    let mut queue = events;
    queue.resize(EVENT_HISTORY.max(n), "null".into());
    let stats = format!(
        "{{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":{n},\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0}}"
    );
    format!(
        "{{\"Root\":{root},\"WatcherHub\":{{\"EventHistory\":{{\"Queue\":{{\"Events\":[{}],\"Size\":{n},\"Front\":0,\"Back\":{n},\"Capacity\":{EVENT_HISTORY}}},\"StartIndex\":1,\"LastIndex\":{n}}}}},\"CurrentIndex\":{n},\"Stats\":{stats},\"CurrentVersion\":2}}",
        queue.join(",")
    )
    .into_bytes()
}

/// A minimal protobuf writer for etcd's proto2 messages (gogoproto, non-nullable
/// scalars always written, fields in number order).
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn uint(mut self, field: u32, v: u64) -> Self {
        self.varint(u64::from(field) << 3);
        self.varint(v);
        self
    }
    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
}

/// raftpb.Entry of type EntryConfChange adding `m` at `index` (term 1).
fn conf_change_entry(m: &Member, index: u64) -> Vec<u8> {
    let cc = Pb::default()
        .uint(1, 0) // ID
        .uint(2, 0) // ConfChangeAddNode
        .uint(3, m.id)
        .bytes(4, m.to_json().as_bytes());
    Pb::default()
        .uint(1, 1) // EntryConfChange
        .uint(2, 1) // term
        .uint(3, index)
        .bytes(4, &cc.0)
        .0
}

/// The raft snapshot file's bytes (snappb.Snapshot around raftpb.Snapshot).
pub(crate) fn snap_file(m: &Membership) -> Vec<u8> {
    let n = m.members.len() as u64;
    let mut conf = Pb::default();
    for member in &m.members {
        conf = conf.uint(1, member.id);
    }
    let conf = conf.uint(5, 0); // auto_leave
    let meta = Pb::default().bytes(1, &conf.0).uint(2, n).uint(3, 1);
    let snap = Pb::default()
        .bytes(1, &v2_store(&m.members))
        .bytes(2, &meta.0);
    let crc = crc32c::crc32c(&snap.0);
    Pb::default().uint(1, u64::from(crc)).bytes(2, &snap.0).0
}

/// The file name etcd gives that snapshot.
pub(crate) fn snap_file_name(m: &Membership) -> String {
    format!("{:016x}-{:016x}.snap", 1, m.members.len())
}

/// The WAL's records, framed and CRC-chained as etcd's WAL encoder writes them (before
/// preallocation).
pub(crate) fn wal_records(m: &Membership) -> Vec<u8> {
    struct Enc {
        out: Vec<u8>,
        crc: u32,
    }
    impl Enc {
        fn record(&mut self, kind: u64, data: Option<&[u8]>) {
            if let Some(d) = data {
                self.crc = crc32c::crc32c_append(self.crc, d);
            }
            let mut rec = Pb::default().uint(1, kind).uint(2, u64::from(self.crc));
            if let Some(d) = data {
                rec = rec.bytes(3, d);
            }
            let len = rec.0.len();
            let pad = (8 - len % 8) % 8;
            let mut field = len as u64;
            if pad != 0 {
                field |= (0x80 | pad as u64) << 56;
            }
            self.out.extend_from_slice(&field.to_le_bytes());
            self.out.extend_from_slice(&rec.0);
            self.out.extend(std::iter::repeat_n(0u8, pad));
        }
    }
    const METADATA: u64 = 1;
    const ENTRY: u64 = 2;
    const STATE: u64 = 3;
    const CRC: u64 = 4;
    const SNAPSHOT: u64 = 5;
    let n = m.members.len() as u64;
    let mut e = Enc {
        out: Vec::new(),
        crc: 0,
    };
    e.record(CRC, None);
    let metadata = Pb::default().uint(1, m.local_id).uint(2, m.cluster_id).0;
    e.record(METADATA, Some(&metadata));
    e.record(SNAPSHOT, Some(&Pb::default().uint(1, 0).uint(2, 0).0));
    for (i, member) in m.members.iter().enumerate() {
        e.record(ENTRY, Some(&conf_change_entry(member, i as u64 + 1)));
    }
    let vote = m.members.first().map_or(0, |f| f.id);
    let state = Pb::default().uint(1, 1).uint(2, vote).uint(3, n).0;
    e.record(STATE, Some(&state));
    e.record(SNAPSHOT, Some(&Pb::default().uint(1, n).uint(2, 1).0));
    e.out
}

/// The database edits of a restore: the consistent index, and the members buckets
/// holding exactly the new members. Buckets etcd's stores create at start-up are created
/// here too if the snapshot lacks them.
pub(crate) fn db_edits(m: &Membership) -> Edits {
    let mut edits = Edits::new();
    let n = m.members.len() as u64;
    edits.insert(
        b"meta".to_vec(),
        Edit {
            clear: false,
            puts: [(b"consistent_index".to_vec(), Some(n.to_be_bytes().to_vec()))].into(),
        },
    );
    edits.insert(
        b"members".to_vec(),
        Edit {
            clear: true,
            puts: m
                .members
                .iter()
                .map(|x| {
                    (
                        format!("{:x}", x.id).into_bytes(),
                        Some(x.to_json().into_bytes()),
                    )
                })
                .collect(),
        },
    );
    edits.insert(
        b"members_removed".to_vec(),
        Edit {
            clear: true,
            puts: BTreeMap::new(),
        },
    );
    for bucket in ["key", "lease", "cluster"] {
        edits.insert(bucket.as_bytes().to_vec(), Edit::default());
    }
    edits
}

// ---------------------------------------------------------------- the restore (I/O)

fn werr(path: &Path) -> impl Fn(std::io::Error) -> RestoreError + '_ {
    move |e| RestoreError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Makes sure `dir` is a new or empty directory; returns whether it was created.
fn prepare_dir(dir: &Path, what: &'static str) -> Result<bool, RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RestoreError::NotEmpty {
                    what,
                    path: dir.to_path_buf(),
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(dir)?;
            Ok(true)
        }
        Err(e) => Err(werr(dir)(e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), RestoreError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(werr(dir))
}

fn write_synced(path: &Path, bytes: &[u8], len: Option<u64>) -> Result<(), RestoreError> {
    let mut o = std::fs::File::options();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(werr(path))?;
    f.write_all(bytes).map_err(werr(path))?;
    if let Some(len) = len {
        f.set_len(len).map_err(werr(path))?;
    }
    f.sync_all().map_err(werr(path))
}

fn sync_dir(dir: &Path) -> Result<(), RestoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(werr(dir))
}

/// What [`restore`] checks of the settings and the target directories before it reads the
/// snapshot, without writing anything: the membership, and that the data directory and a
/// separate WAL directory are absent or empty. A caller that must first fetch the
/// snapshot (from a storage location, or out of a gzip file) calls this before it does.
pub fn check_targets(cfg: &RestoreConfig) -> Result<Membership, RestoreError> {
    let membership = membership(cfg)?;
    for (what, dir) in [
        ("WAL directory", cfg.wal_dir.as_ref()),
        ("data directory", Some(&cfg.data_dir)),
    ] {
        if let Some(d) = dir
            && std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some())
        {
            return Err(RestoreError::NotEmpty {
                what,
                path: d.clone(),
            });
        }
    }
    Ok(membership)
}

/// Restores `cfg.snapshot` into a new member directory. Checks first (settings, target
/// directories, the snapshot's trailer and tree), writes under a staging name, and
/// renames into place only when everything is synced. `progress(done, total)` is told
/// the database bytes written.
pub fn restore(cfg: &RestoreConfig, progress: &dyn Fn(u64, u64)) -> Result<Restored, RestoreError> {
    let membership = check_targets(cfg)?;
    let snap_err = |source| RestoreError::Snapshot {
        path: cfg.snapshot.clone(),
        source,
    };
    // Read and check the snapshot before touching any directory.
    let data = snapshot::read_file(&cfg.snapshot).map_err(snap_err)?;
    let db_bytes = snapshot::check_trailer(&data, cfg.skip_hash_check, &|| data.release())
        .map_err(snap_err)?;
    let db = Db::open_mapped(db_bytes, &data).map_err(snap_err)?;
    snapshot::check_tree(&db).map_err(snap_err)?;
    let status = snapshot::compute_status(&db).map_err(snap_err)?;

    let created_data = prepare_dir(&cfg.data_dir, "data directory")?;
    let staging = cfg.data_dir.join(".lifeboat-restoring");
    let total = db.high_water * db.page_size as u64;
    let result = write_member(cfg, &db, &membership, &staging, &|done| {
        progress(done.min(total), total)
    });
    match result {
        Ok(wal_dir) => {
            let _ = std::fs::remove_dir(&staging);
            Ok(Restored {
                snapshot: status,
                membership,
                data_dir: cfg.data_dir.clone(),
                wal_dir,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            if created_data {
                let _ = std::fs::remove_dir_all(&cfg.data_dir);
            }
            Err(e)
        }
    }
}

fn write_member(
    cfg: &RestoreConfig,
    db: &Db<'_>,
    m: &Membership,
    staging: &Path,
    progress: &dyn Fn(u64),
) -> Result<PathBuf, RestoreError> {
    let member = staging.join("member");
    let snap_dir = member.join("snap");
    create_private_dir(&snap_dir)?;
    let db_path = snap_dir.join("db");
    bolt_write::rewrite(db, &db_path, &db_edits(m), progress).map_err(|reason| {
        RestoreError::Write {
            path: db_path.clone(),
            reason,
        }
    })?;
    write_synced(&snap_dir.join(snap_file_name(m)), &snap_file(m), None)?;
    sync_dir(&snap_dir)?;

    let wal_name = "0000000000000000-0000000000000000.wal";
    let wal = wal_records(m);
    let final_wal_dir = match &cfg.wal_dir {
        None => {
            let wal_dir = member.join("wal");
            create_private_dir(&wal_dir)?;
            write_synced(&wal_dir.join(wal_name), &wal, Some(WAL_SEGMENT_BYTES))?;
            sync_dir(&wal_dir)?;
            cfg.data_dir.join("member").join("wal")
        }
        Some(w) => {
            create_private_dir(w)?;
            let tmp = w.join(format!(".{wal_name}.restoring"));
            write_synced(&tmp, &wal, Some(WAL_SEGMENT_BYTES))?;
            let dest = w.join(wal_name);
            std::fs::rename(&tmp, &dest).map_err(werr(&dest))?;
            sync_dir(w)?;
            w.clone()
        }
    };
    sync_dir(&member)?;
    let dest = cfg.data_dir.join("member");
    std::fs::rename(&member, &dest).map_err(werr(&dest))?;
    sync_dir(&cfg.data_dir)?;
    Ok(final_wal_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn cfg(name: &str, cluster: &str, advertise: &str) -> RestoreConfig {
        RestoreConfig {
            name: name.into(),
            initial_cluster: cluster.into(),
            initial_advertise_peer_urls: advertise.into(),
            ..RestoreConfig::new("s.db".into())
        }
    }

    #[test]
    fn default_flags_give_etcds_well_known_ids() {
        // A single default etcd reports member 8e9e05c52164694d in cluster
        // cdf818194e3a8c32 (etcd's logs and docs show these for the default flags).
        let m = membership(&RestoreConfig::new("s.db".into())).unwrap();
        assert_eq!(format!("{:x}", m.local_id), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", m.cluster_id), "cdf818194e3a8c32");
    }

    #[test]
    fn members_are_ordered_by_id_and_the_local_one_is_found() {
        let c = cfg(
            "m2",
            "m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380",
            "http://10.0.0.2:2380",
        );
        let m = membership(&c).unwrap();
        assert_eq!(m.members.len(), 3);
        assert!(m.members.windows(2).all(|w| w[0].id < w[1].id));
        let local = m.members.iter().find(|x| x.id == m.local_id).unwrap();
        assert_eq!(local.name, "m2");
        // Another token gives other ids (the token is what separates two clusters
        // restored from one snapshot with the same URLs).
        let other = membership(&RestoreConfig {
            initial_cluster_token: "other".into(),
            ..c
        })
        .unwrap();
        assert_ne!(other.cluster_id, m.cluster_id);
    }

    #[rstest]
    #[case(
        "x",
        "default=http://localhost:2380",
        "http://localhost:2380",
        Setting::Name,
        "couldn't find local name \"x\" in the initial cluster configuration; the member name must be one of: default"
    )]
    #[case(
        "default",
        "default=http://localhost:2380",
        "http://localhost:2381",
        Setting::InitialAdvertisePeerUrls,
        "the advertised peer URLs http://localhost:2381 do not match the URLs of \"default\" in the initial cluster (http://localhost:2380); they must be the same"
    )]
    #[case(
        "default",
        "default=ftp://localhost:2380",
        "http://localhost:2380",
        Setting::InitialCluster,
        "the initial cluster: URL scheme must be http, https, unix, or unixs: ftp://localhost:2380"
    )]
    #[case(
        "default",
        "default=localhost:2380",
        "http://localhost:2380",
        Setting::InitialCluster,
        "the initial cluster: \"localhost:2380\" is not a URL (want http://HOST:PORT)"
    )]
    #[case(
        "default",
        "default=http://localhost",
        "http://localhost",
        Setting::InitialCluster,
        "the initial cluster: URL address does not have the form \"host:port\": http://localhost"
    )]
    #[case(
        "default",
        "default=http://localhost:2380/x",
        "http://localhost:2380/x",
        Setting::InitialCluster,
        "the initial cluster: URL must not contain a path: http://localhost:2380/x"
    )]
    #[case(
        "a",
        "a=http://h:1",
        "h:1",
        Setting::InitialAdvertisePeerUrls,
        "the member's advertised peer URLs: \"h:1\" is not a URL (want http://HOST:PORT)"
    )]
    #[case(
        "a",
        "a=http://h:1,b=http://h:1",
        "http://h:1",
        Setting::InitialCluster,
        "the initial cluster has duplicate url http://h:1 (members a and b)"
    )]
    #[case(
        "a",
        "a http://h:1",
        "http://h:1",
        Setting::InitialCluster,
        "the initial cluster: \"a http://h:1\" is not NAME=URL (e.g. m1=https://10.0.0.1:2380)"
    )]
    #[case(
        "a",
        "",
        "http://h:1",
        Setting::InitialCluster,
        "the initial cluster is empty"
    )]
    fn bad_settings_are_named(
        #[case] name: &str,
        #[case] cluster: &str,
        #[case] advertise: &str,
        #[case] setting: Setting,
        #[case] reason: &str,
    ) {
        let err = membership(&cfg(name, cluster, advertise)).unwrap_err();
        assert_eq!(
            err,
            MembershipError {
                setting,
                reason: reason.into()
            }
        );
    }

    #[test]
    fn go_json_escapes_as_go_does() {
        assert_eq!(
            go_json_string("a\"b\\<>&\n\u{1}"),
            r#""a\"b\\\u003c\u003e\u0026\n\u0001""#
        );
    }

    #[test]
    fn v2_store_is_json_with_the_members() {
        let m = membership(&cfg("a", "a=http://h:1,b=http://h:2", "http://h:1")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&v2_store(&m.members)).unwrap();
        assert_eq!(v["CurrentIndex"], 2);
        let members = v["Root"]["Children"]["0"]["Children"]["members"]["Children"]
            .as_object()
            .unwrap();
        assert_eq!(members.len(), 2);
        for x in &m.members {
            let attrs = &members[&format!("{:x}", x.id)]["Children"]["raftAttributes"]["Value"];
            let attrs: serde_json::Value = serde_json::from_str(attrs.as_str().unwrap()).unwrap();
            assert_eq!(attrs["peerURLs"][0], x.peer_urls[0].as_str());
        }
        let events = v["WatcherHub"]["EventHistory"]["Queue"]["Events"]
            .as_array()
            .unwrap();
        assert_eq!(events.len(), EVENT_HISTORY);
        assert_eq!(events.iter().filter(|e| !e.is_null()).count(), 2);
    }

    /// Reads back the WAL framing: lengths, padding and the CRC chain.
    #[test]
    fn wal_records_are_framed_and_crc_chained() {
        let m = membership(&cfg(
            "a",
            "a=http://h:1,b=http://h:2,c=http://h:3",
            "http://h:1",
        ))
        .unwrap();
        let wal = wal_records(&m);
        let mut at = 0;
        let mut kinds = Vec::new();
        let mut crc = 0u32;
        while at < wal.len() {
            let field = u64::from_le_bytes(wal[at..at + 8].try_into().unwrap());
            let len = (field & 0x00ff_ffff_ffff_ffff) as usize;
            let pad = if field >> 63 == 1 {
                ((field >> 56) & 0x7) as usize
            } else {
                0
            };
            assert_eq!((len + pad) % 8, 0);
            let rec = &wal[at + 8..at + 8 + len];
            // type, crc, optional data: decode the three fields.
            let mut p = 0;
            let read_varint = |p: &mut usize| {
                let (mut v, mut s) = (0u64, 0);
                loop {
                    let b = rec[*p];
                    *p += 1;
                    v |= u64::from(b & 0x7f) << s;
                    s += 7;
                    if b < 0x80 {
                        return v;
                    }
                }
            };
            assert_eq!(read_varint(&mut p), 1 << 3);
            let kind = read_varint(&mut p);
            assert_eq!(read_varint(&mut p), 2 << 3);
            let rec_crc = read_varint(&mut p) as u32;
            if p < rec.len() {
                assert_eq!(read_varint(&mut p), (3 << 3) | 2);
                let n = read_varint(&mut p) as usize;
                crc = crc32c::crc32c_append(crc, &rec[p..p + n]);
            }
            assert_eq!(rec_crc, crc, "record {} breaks the CRC chain", kinds.len());
            kinds.push(kind);
            at += 8 + len + pad;
        }
        // crc, metadata, empty snapshot, 3 conf changes, hard state, snapshot at 3.
        assert_eq!(kinds, vec![4, 1, 5, 2, 2, 2, 3, 5]);
    }
}
