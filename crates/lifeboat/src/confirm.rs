//! The one confirmation policy of every destructive verb (backup, restore, location and
//! schedule delete, uninstall, etcd snapshot prune): `--confirm` goes ahead; without it a
//! terminal is asked "... [y/N]" (y, Y or yes go ahead; anything else deletes nothing)
//! and anything that is not a terminal is refused, naming the flag.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// What to do about a destructive verb before asking anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `--confirm` was given.
    Proceed,
    /// Ask on the terminal.
    Ask,
    /// No terminal to ask and no `--confirm`: refuse.
    Refuse,
}

/// The decision from (is stdin a terminal, was `--confirm` given).
pub fn decide(is_tty: bool, confirmed: bool) -> Decision {
    match (confirmed, is_tty) {
        (true, _) => Decision::Proceed,
        (false, true) => Decision::Ask,
        (false, false) => Decision::Refuse,
    }
}

/// Whether an answer to "[y/N]" goes ahead: y, Y or yes (surrounding blanks ignored).
pub fn accepts(answer: &str) -> bool {
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// "2 backup(s) (a, b)": how an action names what it deletes.
pub fn counted(kind: &str, names: &[String]) -> String {
    format!("{} {kind}(s) ({})", names.len(), names.join(", "))
}

/// The prompt for `action` ("delete 2 backup(s) (a, b)"); `note`, a sentence or empty,
/// says what stays.
fn prompt(action: &str, note: &str) -> String {
    if note.is_empty() {
        format!("Are you sure you want to {action}? [y/N] ")
    } else {
        format!("Are you sure you want to {action}? {note} [y/N] ")
    }
}

/// The refusal off a terminal.
fn refusal(action: &str, note: &str) -> String {
    if note.is_empty() {
        format!("refusing to {action} without confirmation: pass --confirm")
    } else {
        format!("refusing to {action} without confirmation: pass --confirm. {note}")
    }
}

/// Asks for `action` under the policy. `Ok(true)`: go ahead; `Ok(false)`: the user said
/// no ("Nothing deleted." is printed); an error when there is no terminal to ask.
pub fn confirm(action: &str, note: &str, confirmed: bool) -> Result<bool> {
    let stdin = std::io::stdin();
    match decide(stdin.is_terminal(), confirmed) {
        Decision::Proceed => Ok(true),
        Decision::Refuse => bail!("{}", refusal(action, note)),
        Decision::Ask => {
            eprint!("{}", prompt(action, note));
            std::io::stderr().flush()?;
            let mut answer = String::new();
            stdin.lock().read_line(&mut answer)?;
            if accepts(&answer) {
                Ok(true)
            } else {
                println!("Nothing deleted.");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(true, true, Decision::Proceed)]
    #[case(false, true, Decision::Proceed)]
    #[case(true, false, Decision::Ask)]
    #[case(false, false, Decision::Refuse)]
    fn decision(#[case] is_tty: bool, #[case] confirmed: bool, #[case] want: Decision) {
        assert_eq!(decide(is_tty, confirmed), want);
    }

    #[rstest]
    #[case("y\n", true)]
    #[case("Y\n", true)]
    #[case("yes\n", true)]
    #[case("  yes  \r\n", true)]
    #[case("\n", false)]
    #[case("n\n", false)]
    #[case("N\n", false)]
    #[case("no\n", false)]
    #[case("YES\n", false)]
    #[case("yep\n", false)]
    #[case("", false)]
    fn answers(#[case] answer: &str, #[case] yes: bool) {
        assert_eq!(accepts(answer), yes);
    }

    #[test]
    fn same_words_for_every_verb() {
        assert_eq!(
            counted("backup", &["a".into(), "b".into()]),
            "2 backup(s) (a, b)"
        );
        assert_eq!(
            prompt("delete 1 backup(s) (b1)", ""),
            "Are you sure you want to delete 1 backup(s) (b1)? [y/N] "
        );
        assert_eq!(
            refusal("delete 1 schedule(s) (s1)", "Their backups stay."),
            "refusing to delete 1 schedule(s) (s1) without confirmation: pass --confirm. Their backups stay."
        );
    }
}
