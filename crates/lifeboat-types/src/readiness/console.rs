//! The DR console: who may read it, and what it shows, as data. The server serves a
//! read-only page and its state (`lifeboat-server/src/console.rs`); these are the rules it
//! follows: [`access`] (open on a loopback address with no token configured; otherwise
//! the bearer token, compared in constant time) and [`rpo_series`] (the RPO over time,
//! rebuilt from the backups themselves, so it survives a restart of the server).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Whether a request may read the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Served: loopback without a token, or the right token.
    Allowed,
    /// 401: a token is configured and the request did not present it.
    Unauthorized,
    /// 403: reachable from the network and no token configured: the console would show the
    /// cluster's backups to anyone who can reach the port.
    NoTokenConfigured,
    /// 403: open on loopback, but asked under a Host name that is not a loopback one: a
    /// page of another site whose name was rebound to 127.0.0.1 (DNS rebinding).
    ForeignHost,
}

/// Whether a Host header names this machine's loopback (`localhost`, `127.0.0.1`,
/// `[::1]`, with or without a port).
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Equal in time whatever the bytes (a token compared byte by byte leaks its prefix).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may read: `loopback` — the console listens on a loopback address only; `token` —
/// the configured bearer token; `authorization` and `host` — the request's headers.
pub fn access(
    loopback: bool,
    token: Option<&str>,
    authorization: Option<&str>,
    host: Option<&str>,
) -> Access {
    match token.filter(|t| !t.is_empty()) {
        None if loopback && host.is_some_and(loopback_host) => Access::Allowed,
        None if loopback => Access::ForeignHost,
        None => Access::NoTokenConfigured,
        Some(t) => {
            let presented = authorization
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim);
            match presented {
                Some(p) if same(p.as_bytes(), t.as_bytes()) => Access::Allowed,
                _ => Access::Unauthorized,
            }
        }
    }
}

/// One point of the RPO over time: Unix seconds, and the RPO then in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RpoPoint {
    /// When.
    pub t: i64,
    /// The RPO then: seconds since the recovery point of the newest backup completed by
    /// then.
    pub rpo: u64,
}

/// The RPO over `[from, now]` from the Completed backups' (recovery point, completion)
/// times: a saw-tooth that rises with time and drops when a backup completes. Before the
/// first backup in view, the one completed before `from` counts; with none, the series
/// starts at the first completion.
pub fn rpo_series(
    backups: &[(DateTime<Utc>, DateTime<Utc>)],
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<RpoPoint> {
    let mut by_completion: Vec<(DateTime<Utc>, DateTime<Utc>)> = backups
        .iter()
        .filter(|(_, done)| *done <= now)
        .map(|(point, done)| (*done, *point))
        .collect();
    by_completion.sort();
    let age = |t: DateTime<Utc>, point: DateTime<Utc>| {
        t.signed_duration_since(point)
            .to_std()
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let at = |t: DateTime<Utc>, newest: DateTime<Utc>| RpoPoint {
        t: t.timestamp(),
        rpo: age(t, newest),
    };
    let mut out = Vec::new();
    // The newest recovery point so far (a backup completing later may hold an older one).
    let mut newest: Option<DateTime<Utc>> = None;
    for (done, point) in by_completion {
        if done < from {
            newest = Some(newest.map_or(point, |n| n.max(point)));
            continue;
        }
        if let Some(n) = newest {
            if out.is_empty() {
                out.push(at(from, n));
            }
            out.push(at(done, n));
        }
        let n = newest.map_or(point, |n| n.max(point));
        newest = Some(n);
        out.push(at(done, n));
    }
    if let Some(n) = newest {
        if out.is_empty() {
            out.push(at(from, n));
        }
        out.push(at(now, n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const LOCAL: Option<&str> = Some("127.0.0.1:8085");

    #[rstest]
    #[case::loopback_open(true, None, None, LOCAL, Access::Allowed)]
    #[case::localhost_by_name(true, None, None, Some("localhost:8085"), Access::Allowed)]
    #[case::ipv6_loopback(true, None, None, Some("[::1]:8085"), Access::Allowed)]
    #[case::rebound_name(true, None, None, Some("evil.example:8085"), Access::ForeignHost)]
    #[case::no_host(true, None, None, None, Access::ForeignHost)]
    #[case::network_without_token(false, None, None, LOCAL, Access::NoTokenConfigured)]
    #[case::empty_token_is_none(false, Some(""), Some("Bearer "), LOCAL, Access::NoTokenConfigured)]
    #[case::token_needed_on_loopback_too(true, Some("s3cret"), None, LOCAL, Access::Unauthorized)]
    #[case::right_token(
        false,
        Some("s3cret"),
        Some("Bearer s3cret"),
        Some("lifeboat.example"),
        Access::Allowed
    )]
    #[case::wrong_token(
        false,
        Some("s3cret"),
        Some("Bearer s3cres"),
        LOCAL,
        Access::Unauthorized
    )]
    #[case::prefix_of_token(false, Some("s3cret"), Some("Bearer s3c"), LOCAL, Access::Unauthorized)]
    #[case::basic_auth(
        false,
        Some("s3cret"),
        Some("Basic s3cret"),
        LOCAL,
        Access::Unauthorized
    )]
    fn who_may_read(
        #[case] loopback: bool,
        #[case] token: Option<&str>,
        #[case] header: Option<&str>,
        #[case] host: Option<&str>,
        #[case] want: Access,
    ) {
        assert_eq!(access(loopback, token, header, host), want);
    }

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(h * 3600, 0).unwrap()
    }

    fn points(v: &[RpoPoint]) -> Vec<(i64, u64)> {
        v.iter().map(|p| (p.t / 3600, p.rpo / 3600)).collect()
    }

    #[test]
    fn the_rpo_rises_and_drops_at_each_backup() {
        // Backups started at 0, 10 and 20 h, each taking an hour; seen from 5 h to 25 h.
        let b = [(t(0), t(1)), (t(10), t(11)), (t(20), t(21))];
        assert_eq!(
            points(&rpo_series(&b, t(5), t(25))),
            [(5, 5), (11, 11), (11, 1), (21, 11), (21, 1), (25, 5)]
        );
    }

    #[test]
    fn without_an_earlier_backup_the_series_starts_at_the_first() {
        let b = [(t(10), t(11))];
        assert_eq!(points(&rpo_series(&b, t(0), t(15))), [(11, 1), (15, 5)]);
        assert_eq!(rpo_series(&[], t(0), t(15)), []);
    }

    #[test]
    fn a_backup_completing_late_with_an_older_point_does_not_raise_it() {
        // The long backup started at 2 h completes at 12 h, after one started at 10 h.
        let b = [(t(10), t(11)), (t(2), t(12))];
        assert_eq!(
            points(&rpo_series(&b, t(11), t(13))),
            [(11, 1), (12, 2), (12, 2), (13, 3)]
        );
    }
}
