//! Where the CLI's backup, restore and location verbs do their work, as velero's CLI
//! does: through the cluster of the current kube context when lifeboat is installed there
//! (its lifeboat.dev CRDs are served; the in-cluster server runs and stores), else here,
//! on this machine, against the storage locations of the user's config file.
//!
//! - `--mode local` (or `LIFEBOAT_MODE=local`) always works here; `--mode cluster` always
//!   through the cluster, and refuses — naming why — when lifeboat is not installed there
//!   or the API server cannot be asked.
//! - `--mode auto` (the default) asks the cluster once whether lifeboat is installed:
//!   yes means the cluster, no means here. When no cluster is configured at all, or a
//!   `--storage-location` is a URL (a place this machine opens, not a location object of
//!   a server), it works here without asking. When the API server cannot be asked, it
//!   works here with a warning that says so and how to insist on the cluster — silently
//!   when that cluster is only the local dev cluster the CLI falls back to (nobody
//!   configured it: a stopped dev cluster is no news).
//!
//! The decision is asked in two steps: first without the probe's answer ([`Step::Ask`]
//! says "ask the cluster"), then with it.

/// What the user asked for: `--mode` or `LIFEBOAT_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requested {
    /// Follow the context (the default).
    #[default]
    Auto,
    /// Always here.
    Local,
    /// Always through the cluster.
    Cluster,
}

impl std::str::FromStr for Requested {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" | "" => Ok(Requested::Auto),
            "local" => Ok(Requested::Local),
            "cluster" | "server" => Ok(Requested::Cluster),
            other => Err(format!(
                "unknown mode {other:?}: use auto (follow the kube context), local (work from this machine) or cluster (through the lifeboat server in the cluster)"
            )),
        }
    }
}

/// What the CLI knows when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed<'a> {
    /// `--mode` / `LIFEBOAT_MODE`.
    pub requested: Requested,
    /// Which cluster the CLI would use.
    pub cluster: ClusterSource,
    /// `--storage-location` is a URL or a path (opened here), not a location's name.
    pub location_is_url: bool,
    /// The probe's answer, once asked.
    pub installed: Option<Installed<'a>>,
}

/// Which cluster the CLI would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterSource {
    /// None at all.
    None,
    /// The local dev cluster, used when no kubeconfig is configured.
    DevFallback,
    /// One the user configured (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`, in-cluster).
    Configured,
}

/// The probe's answer: does the cluster serve lifeboat's CRDs?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed<'a> {
    /// Yes: lifeboat is installed.
    Yes,
    /// No: the cluster answered and does not serve them.
    No,
    /// The API server could not be asked (the reason, for the message).
    Unknown(&'a str),
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask the cluster whether lifeboat is installed, then decide again.
    Ask,
    /// Work here; `warning` (when set) is printed first.
    Local {
        /// Why the cluster was not used although it might have been.
        warning: Option<String>,
    },
    /// Work through the cluster's objects.
    Cluster,
    /// Do nothing: the message says why and what to pass instead.
    Refuse(String),
}

/// Decides where a verb works (see the module's text).
pub fn decide(o: &Observed<'_>) -> Step {
    match o.requested {
        Requested::Local => Step::Local { warning: None },
        Requested::Cluster if o.location_is_url => Step::Refuse(
            "--storage-location is a URL, which only this machine can open; through the cluster, name one of its BackupStorageLocations, or pass --mode local".into(),
        ),
        Requested::Cluster if o.cluster == ClusterSource::None => Step::Refuse(
            "--mode cluster needs a cluster: pass --kubeconfig FILE or --kubecontext NAME, or set KUBECONFIG".into(),
        ),
        Requested::Cluster => match o.installed {
            None => Step::Ask,
            Some(Installed::Yes) => Step::Cluster,
            Some(Installed::No) => Step::Refuse(
                "lifeboat is not installed in this cluster (it serves no lifeboat.dev Backup resource): run `lifeboat install`, or pass --mode local to work from this machine".into(),
            ),
            Some(Installed::Unknown(why)) => Step::Refuse(format!(
                "cannot ask the cluster whether lifeboat is installed: {why}; check the kube context, or pass --mode local to work from this machine"
            )),
        },
        Requested::Auto if o.location_is_url || o.cluster == ClusterSource::None => {
            Step::Local { warning: None }
        }
        Requested::Auto => match o.installed {
            None => Step::Ask,
            Some(Installed::Yes) => Step::Cluster,
            Some(Installed::No) => Step::Local { warning: None },
            Some(Installed::Unknown(_)) if o.cluster == ClusterSource::DevFallback => {
                Step::Local { warning: None }
            }
            Some(Installed::Unknown(why)) => Step::Local {
                warning: Some(format!(
                    "cannot ask the cluster whether lifeboat is installed ({why}); working from this machine with its storage locations (pass --mode cluster to insist on the cluster)"
                )),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Installed::*;
    use Requested::*;

    fn obs(
        requested: Requested,
        configured: bool,
        url: bool,
        installed: Option<Installed<'static>>,
    ) -> Observed<'static> {
        Observed {
            requested,
            cluster: if configured {
                ClusterSource::Configured
            } else {
                ClusterSource::None
            },
            location_is_url: url,
            installed,
        }
    }

    fn local() -> Step {
        Step::Local { warning: None }
    }

    #[rstest::rstest]
    #[case::local_never_asks(obs(Local, true, false, None), local())]
    #[case::local_even_when_installed(obs(Local, true, false, Some(Yes)), local())]
    #[case::auto_asks(obs(Auto, true, false, None), Step::Ask)]
    #[case::auto_installed(obs(Auto, true, false, Some(Yes)), Step::Cluster)]
    #[case::auto_not_installed(obs(Auto, true, false, Some(No)), local())]
    #[case::auto_url_location_never_asks(obs(Auto, true, true, None), local())]
    #[case::auto_no_cluster_never_asks(obs(Auto, false, false, None), local())]
    #[case::cluster_asks(obs(Cluster, true, false, None), Step::Ask)]
    #[case::cluster_installed(obs(Cluster, true, false, Some(Yes)), Step::Cluster)]
    fn decisions(#[case] o: Observed<'static>, #[case] want: Step) {
        assert_eq!(decide(&o), want);
    }

    #[rstest::rstest]
    #[case::not_installed(
        obs(Cluster, true, false, Some(No)),
        "lifeboat is not installed in this cluster"
    )]
    #[case::unreachable(
        obs(Cluster, true, false, Some(Unknown("connection refused"))),
        "cannot ask the cluster whether lifeboat is installed: connection refused"
    )]
    #[case::url(obs(Cluster, true, true, None), "--storage-location is a URL")]
    #[case::no_cluster(obs(Cluster, false, false, None), "--mode cluster needs a cluster")]
    fn refusals_say_why_and_what_to_pass(#[case] o: Observed<'static>, #[case] want: &str) {
        match decide(&o) {
            Step::Refuse(m) => {
                assert!(m.starts_with(want), "{m}");
                assert!(m.contains("--"), "names a flag: {m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unreachable_cluster_in_auto_mode_works_here_with_a_warning() {
        match decide(&obs(Auto, true, false, Some(Unknown("timed out")))) {
            Step::Local { warning: Some(w) } => {
                assert!(
                    w.contains("timed out") && w.contains("--mode cluster"),
                    "{w}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stopped_dev_cluster_nobody_configured_is_no_news() {
        let o = Observed {
            requested: Auto,
            cluster: ClusterSource::DevFallback,
            location_is_url: false,
            installed: None,
        };
        assert_eq!(decide(&o), Step::Ask);
        let asked = Observed {
            installed: Some(Unknown("connection refused")),
            ..o.clone()
        };
        assert_eq!(decide(&asked), Step::Local { warning: None });
        let installed = Observed {
            installed: Some(Yes),
            ..o
        };
        assert_eq!(decide(&installed), Step::Cluster);
    }

    #[rstest::rstest]
    #[case("auto", Auto)]
    #[case("local", Local)]
    #[case("cluster", Cluster)]
    #[case("server", Cluster)]
    fn modes_parse(#[case] s: &str, #[case] want: Requested) {
        assert_eq!(s.parse::<Requested>().unwrap(), want);
    }

    #[test]
    fn an_unknown_mode_lists_the_modes() {
        let e = "remote".parse::<Requested>().unwrap_err();
        assert!(
            e.contains("auto") && e.contains("local") && e.contains("cluster"),
            "{e}"
        );
    }
}
