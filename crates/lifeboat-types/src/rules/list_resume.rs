//! What a paginated LIST does when the API server expires its continue token.
//!
//! A LIST is read in pages; each page's `metadata.continue` names the next. The token
//! holds the resourceVersion of the first page, and the server answers `410 Gone`
//! (Status reason `Expired`) once etcd has compacted that version away — a LIST slower
//! than the compaction interval (5 minutes by default) on slow storage. The Status then
//! usually carries a fresh `metadata.continue` that continues the same list from where it
//! was at the latest resourceVersion (an inconsistent continuation: the rest of the list
//! is newer than its beginning).
//!
//! [`list_resume`] decides: continue with that token; else restart the LIST of that scope
//! and skip what was already taken ([`ListCursor`]); give up (an error naming the
//! resource) after [`MAX_EXPIRIES`] expiries in a row without a new item, or when the
//! server's order does not allow skipping safely. Any other failure is not this rule's:
//! the caller records it.
//!
//! [`ListCursor`] de-duplicates a restarted LIST in constant memory: the API server
//! serves a paginated LIST in the order of its storage keys (`<namespace>/<name>`, or
//! `<name>` for cluster-scoped objects, compared byte by byte) — the continue token itself
//! is "the last key" — so everything up to the last key taken was taken, and a restart
//! skips exactly those. The cursor checks the order as items come; a server that does not
//! keep it (an aggregated API with its own pagination) is given up on rather than risking
//! a duplicate or a lost item.

/// Expiries in a row, without a new item in between, after which a LIST is given up.
pub const MAX_EXPIRIES: u32 = 3;

/// A failed LIST page, as far as resuming goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFailure<'a> {
    /// The HTTP status code of the answer (0: there was no answer).
    pub code: u16,
    /// The Status reason (`Expired`, `Gone`, ...), empty when the server gave none.
    pub reason: &'a str,
    /// The Status's `metadata.continue`, when it has one.
    pub continue_token: Option<&'a str>,
}

/// Why a LIST is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The continue token expired [`MAX_EXPIRIES`] times in a row without a new item.
    TooManyExpiries,
    /// The token expired, the server offered none to continue with, and its items did
    /// not come in key order: a restart cannot tell what was taken already.
    Unordered,
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GiveUp::TooManyExpiries => write!(
                f,
                "its continue token expired {MAX_EXPIRIES} times in a row (the API server's storage compacted the list's resourceVersion before the next page was read); the items after the last page read are not in the backup — run the backup again, with fewer resource types at once or when the API server's storage is less loaded"
            ),
            GiveUp::Unordered => write!(
                f,
                "its continue token expired and the API server listed its items out of key order, so the LIST cannot be restarted without duplicates; the items after the last page read are not in the backup — run the backup again"
            ),
        }
    }
}

/// What to do after a LIST page failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListResume {
    /// Not an expired continue token: record the failure as it is.
    Fail,
    /// Continue with this token (the rest of the list is from a newer resourceVersion).
    Continue(String),
    /// LIST the scope again from the start, skipping what was taken ([`ListCursor`]).
    Restart,
    /// Stop this scope and record an error naming the resource.
    GiveUp(GiveUp),
}

/// Whether `f` is an expired continue token: 410 Gone (reason `Expired`, or an old
/// server's `Gone`, or none) on a page requested with a continue token. A first page
/// cannot expire (it carries no token), so a 410 there is an ordinary failure.
pub fn is_expired(f: &ListFailure<'_>, requested_with_continue: bool) -> bool {
    requested_with_continue && f.code == 410
}

/// The decision after a LIST page failed with `f`. `expiries` counts the expiries in a
/// row without a new item in between, this one included; `in_order` is
/// [`ListCursor::in_order`].
pub fn list_resume(
    f: &ListFailure<'_>,
    requested_with_continue: bool,
    expiries: u32,
    in_order: bool,
) -> ListResume {
    if !is_expired(f, requested_with_continue) {
        return ListResume::Fail;
    }
    if expiries >= MAX_EXPIRIES {
        return ListResume::GiveUp(GiveUp::TooManyExpiries);
    }
    match f.continue_token.filter(|t| !t.is_empty()) {
        Some(t) => ListResume::Continue(t.to_owned()),
        None if in_order => ListResume::Restart,
        None => ListResume::GiveUp(GiveUp::Unordered),
    }
}

/// The key a paginated LIST is ordered by: `<namespace>/<name>`, or `<name>` for a
/// cluster-scoped object.
pub fn list_key(namespace: Option<&str>, name: &str) -> String {
    match namespace.filter(|n| !n.is_empty()) {
        Some(n) => format!("{n}/{name}"),
        None => name.to_owned(),
    }
}

/// Where a LIST of one scope is: the last key taken, where a restart's replay ends, the
/// previous key (to check the order). Three keys whatever the size of the list (see the
/// module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCursor {
    /// The greatest key taken so far.
    last: Option<String>,
    /// Keys up to this one were taken before a restart: skipped.
    replay_until: Option<String>,
    /// The key before this one in the current pass.
    prev: Option<String>,
    /// A key came that was not after the one before it.
    out_of_order: bool,
}

impl ListCursor {
    /// A cursor at the start of a LIST.
    pub fn new() -> Self {
        ListCursor::default()
    }

    /// Records an item the server sent; `true` when it is new (to be taken), `false` when
    /// a restarted LIST sends it again (taken before the restart).
    pub fn admit(&mut self, key: &str) -> bool {
        if self.prev.as_deref().is_some_and(|p| key <= p) {
            self.out_of_order = true;
        }
        self.prev = Some(key.to_owned());
        if self.replay_until.as_deref().is_some_and(|r| key <= r) {
            return false;
        }
        // A key not after the greatest taken breaks the order (noted above): it is taken,
        // as it cannot have been.
        if self.last.as_deref().is_none_or(|l| key > l) {
            self.last = Some(key.to_owned());
        }
        true
    }

    /// The server's items came in key order so far.
    pub fn in_order(&self) -> bool {
        !self.out_of_order
    }

    /// The LIST restarts from the beginning: what was taken is skipped.
    pub fn restart(&mut self) {
        self.replay_until = self.last.clone();
        self.prev = None;
    }
}

/// Where one paginated LIST stands: the continue token of the next page, its
/// [`ListCursor`], and the expiries in a row without a new item. Every LIST that resumes
/// (the backup's, the namespace list's) keeps its page-loop state here and only reports.
#[derive(Debug, Default)]
pub struct ListPager {
    next: Option<String>,
    cursor: ListCursor,
    expiries: u32,
}

impl ListPager {
    /// A pager before the first page.
    pub fn new() -> Self {
        ListPager::default()
    }

    /// The continue token to send with the next page (`None`: the first page).
    pub fn token(&self) -> Option<&str> {
        self.next.as_deref()
    }

    /// A page failed (`f`: what it was, when it had an answer to read): the decision of
    /// [`list_resume`], the pager moved to the page to ask for next when it goes on.
    pub fn failed(&mut self, f: Option<&ListFailure<'_>>) -> ListResume {
        self.expiries += 1;
        let decision = f.map_or(ListResume::Fail, |f| {
            list_resume(
                f,
                self.next.is_some(),
                self.expiries,
                self.cursor.in_order(),
            )
        });
        match &decision {
            ListResume::Continue(token) => self.next = Some(token.clone()),
            ListResume::Restart => {
                self.cursor.restart();
                self.next = None;
            }
            ListResume::Fail | ListResume::GiveUp(_) => {}
        }
        decision
    }

    /// An item of a page, by its key: `true` when it is new ([`ListCursor::admit`]).
    pub fn admit(&mut self, key: &str) -> bool {
        let new = self.cursor.admit(key);
        if new {
            self.expiries = 0;
        }
        new
    }

    /// A page ended with the continue token `next`: `false` when the LIST is complete.
    pub fn advance(&mut self, next: Option<String>) -> bool {
        let more = next.is_some();
        self.next = next;
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn failure(
        code: u16,
        reason: &'static str,
        token: Option<&'static str>,
    ) -> ListFailure<'static> {
        ListFailure {
            code,
            reason,
            continue_token: token,
        }
    }

    #[rstest]
    #[case::expired_with_a_fresh_token(failure(410, "Expired", Some("next")), true, 1, true, ListResume::Continue("next".into()))]
    #[case::second_expiry_with_a_token(failure(410, "Expired", Some("next")), true, 2, false, ListResume::Continue("next".into()))]
    #[case::expired_without_a_token(
        failure(410, "Expired", None),
        true,
        1,
        true,
        ListResume::Restart
    )]
    #[case::an_empty_token_is_none(
        failure(410, "Expired", Some("")),
        true,
        2,
        true,
        ListResume::Restart
    )]
    #[case::old_servers_say_gone(failure(410, "Gone", None), true, 1, true, ListResume::Restart)]
    #[case::a_bare_410(failure(410, "", None), true, 1, true, ListResume::Restart)]
    #[case::too_many_expiries(
        failure(410, "Expired", Some("next")),
        true,
        3,
        true,
        ListResume::GiveUp(GiveUp::TooManyExpiries)
    )]
    #[case::too_many_restarts(
        failure(410, "Expired", None),
        true,
        3,
        true,
        ListResume::GiveUp(GiveUp::TooManyExpiries)
    )]
    #[case::unordered_cannot_restart(
        failure(410, "Expired", None),
        true,
        1,
        false,
        ListResume::GiveUp(GiveUp::Unordered)
    )]
    #[case::first_page_gone_is_a_failure(
        failure(410, "Expired", Some("next")),
        false,
        1,
        true,
        ListResume::Fail
    )]
    #[case::unavailable_is_a_failure(
        failure(503, "ServiceUnavailable", None),
        true,
        1,
        true,
        ListResume::Fail
    )]
    #[case::no_answer_is_a_failure(failure(0, "", None), true, 1, true, ListResume::Fail)]
    fn what_a_failed_page_does(
        #[case] f: ListFailure<'static>,
        #[case] with_continue: bool,
        #[case] expiries: u32,
        #[case] in_order: bool,
        #[case] want: ListResume,
    ) {
        assert_eq!(list_resume(&f, with_continue, expiries, in_order), want);
    }

    /// Feeds keys to a cursor (`|` restarts the LIST); returns the keys taken and
    /// whether they came in order.
    fn take(sent: &str) -> (String, bool) {
        let mut c = ListCursor::new();
        let mut taken = Vec::new();
        for k in sent.split_whitespace() {
            if k == "|" {
                c.restart();
            } else if c.admit(k) {
                taken.push(k);
            }
        }
        (taken.join(" "), c.in_order())
    }

    #[rstest]
    #[case::no_restart("a/1 a/2 a/3", "a/1 a/2 a/3", true)]
    // The LIST expired after four items and restarted: they come again.
    #[case::restart_skips_what_was_taken(
        "a/1 a/2 a/3 a/4 | a/1 a/2 a/3 a/4 a/5",
        "a/1 a/2 a/3 a/4 a/5",
        true
    )]
    // Objects deleted meanwhile are not sent again; objects created before the last key
    // were not in the first list's snapshot and are not taken (as a continue token
    // from a newer resourceVersion would not have taken them either).
    #[case::restart_sees_a_changed_list("a/1 a/3 | a/2 a/4 a/5", "a/1 a/3 a/4 a/5", true)]
    #[case::two_restarts("a/1 | a/1 a/2 | a/1 a/2 a/3", "a/1 a/2 a/3", true)]
    #[case::restart_before_anything("| a/1 a/2", "a/1 a/2", true)]
    // Byte order of "<namespace>/<name>": "a-b/x" sorts before "a/x" ('-' < '/').
    #[case::cluster_wide_keys("a-b/x a/x b/a", "a-b/x a/x b/a", true)]
    #[case::out_of_order_is_noticed("a/2 a/1", "a/2 a/1", false)]
    #[case::out_of_order_after_a_restart("a/1 a/2 | a/1 a/2 a/5 a/4", "a/1 a/2 a/5 a/4", false)]
    fn a_restarted_list_takes_each_item_once(
        #[case] sent: &str,
        #[case] taken: &str,
        #[case] in_order: bool,
    ) {
        assert_eq!(take(sent), (taken.to_owned(), in_order));
    }

    #[test]
    fn keys_are_namespace_slash_name() {
        assert_eq!(list_key(Some("shop"), "web"), "shop/web");
        assert_eq!(list_key(None, "node-1"), "node-1");
        assert_eq!(list_key(Some(""), "pv-1"), "pv-1");
    }

    #[test]
    fn giving_up_names_the_fix() {
        assert!(
            GiveUp::TooManyExpiries
                .to_string()
                .contains("expired 3 times in a row")
        );
        assert!(
            GiveUp::Unordered
                .to_string()
                .contains("run the backup again")
        );
    }

    #[test]
    fn a_pager_resumes_restarts_and_gives_up_as_the_rule_says() {
        let mut p = ListPager::new();
        assert_eq!(p.token(), None);
        // A first page cannot expire.
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", None))),
            ListResume::Fail
        );
        assert!(p.admit("a/1") && p.admit("a/2"));
        assert!(p.advance(Some("t1".into())));
        assert_eq!(p.token(), Some("t1"));
        // An expiry with a fresh token goes on with it.
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", Some("fresh")))),
            ListResume::Continue("fresh".into())
        );
        assert_eq!(p.token(), Some("fresh"));
        // Without one, the LIST starts again and skips what was taken.
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", None))),
            ListResume::Restart
        );
        assert_eq!(p.token(), None);
        assert!(!p.admit("a/1") && !p.admit("a/2"));
        assert!(p.admit("a/3"));
        // A new item reset the count: two more expiries go on, the third in a row gives up.
        assert!(p.advance(Some("t2".into())));
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", Some("x")))),
            ListResume::Continue("x".into())
        );
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", Some("y")))),
            ListResume::Continue("y".into())
        );
        assert_eq!(
            p.failed(Some(&failure(410, "Expired", Some("z")))),
            ListResume::GiveUp(GiveUp::TooManyExpiries)
        );
        // An answer that is not a LIST failure is recorded as it is; the last page ends it.
        assert_eq!(p.failed(None), ListResume::Fail);
        assert!(!p.advance(None));
    }
}
