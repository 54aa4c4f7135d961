//! Account and group changes: what a write to the user and group databases (`/etc/passwd`, `shadow`,
//! `group`, `gshadow`) changed, found by diffing them (`detect::accounts`). The account name is a log
//! attribute, never a metric label.
use super::record::Attrs;

macro_rules! account_changes {
    ($( $variant:ident = $name:literal, $doc:literal; )*) => {
        /// The kinds of account change, a closed set (the policy's `account_change:` values).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum AccountChangeKind {
            $( #[doc = $doc] $variant, )*
        }

        impl AccountChangeKind {
            pub const ALL: &'static [AccountChangeKind] = &[ $( AccountChangeKind::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( AccountChangeKind::$variant => $name, )* }
            }

            pub fn parse(s: &str) -> Option<AccountChangeKind> {
                match s { $( $name => Some(AccountChangeKind::$variant), )* _ => None }
            }

            pub fn description(self) -> &'static str {
                match self { $( AccountChangeKind::$variant => $doc, )* }
            }
        }
    };
}

account_changes! {
    account_added = "account_added", "A user account appeared in /etc/passwd.";
    account_removed = "account_removed", "A user account disappeared from /etc/passwd.";
    uid0_account = "uid0_account", "An account other than the ones that had it now has uid 0 (a second root).";
    gid0_account = "gid0_account", "An account other than the ones that had it now has primary gid 0.";
    uid_changed = "uid_changed", "An existing account's uid changed.";
    shell_changed = "shell_changed", "An account's login shell changed (e.g. a service account given a shell).";
    home_changed = "home_changed", "An account's home directory changed.";
    password_changed = "password_changed", "An account's password hash changed in /etc/shadow.";
    password_removed = "password_removed", "An account's password became empty (login without a password).";
    privileged_group_added = "privileged_group_added", "An account was added to a privileged group (root, sudo, wheel, admin, adm, disk, shadow, docker, lxd).";
    group_added = "group_added", "A group appeared in /etc/group.";
    group_removed = "group_removed", "A group disappeared from /etc/group.";
}

/// One change, with what it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountChange {
    pub kind: AccountChangeKind,
    /// The account (or, for group_added/removed, the group) name.
    pub name: String,
    /// The group, for group membership changes.
    pub group: Option<String>,
    /// Old and new value of what changed (uid, gid, shell, home), when the change has one.
    pub old: Option<String>,
    pub new: Option<String>,
}

impl AccountChange {
    pub fn attributes(&self, a: &mut Attrs) {
        a.push(("tripline.account.change", self.kind.as_str().into()));
        a.push(("user.name", self.name.clone().into()));
        if let Some(g) = &self.group {
            a.push(("group.name", g.clone().into()));
        }
        if let Some(o) = &self.old {
            a.push(("tripline.account.old_value", o.clone().into()));
        }
        if let Some(n) = &self.new {
            a.push(("tripline.account.new_value", n.clone().into()));
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.kind.as_str(), self.name);
        if let Some(g) = &self.group {
            s.push_str(&format!(" to group {g}"));
        }
        match (&self.old, &self.new) {
            (Some(o), Some(n)) => s.push_str(&format!(" ({o} -> {n})")),
            (None, Some(n)) => s.push_str(&format!(" ({n})")),
            _ => {}
        }
        s
    }

    /// Dedup subject: the same change of the same account is one finding.
    pub fn subject(&self) -> String {
        format!(
            "account:{}:{}:{}",
            self.kind.as_str(),
            self.name,
            self.group.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for k in AccountChangeKind::ALL {
            assert_eq!(AccountChangeKind::parse(k.as_str()), Some(*k));
        }
    }
}
