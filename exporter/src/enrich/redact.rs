//! Secret redaction in command lines, applied to argv right after decode — before the process tree
//! stores it, so no detector output, sink or API ever sees the secret (parents' argv included).
//!
//! Only the secret is replaced by `[REDACTED]`; the flag or key stays, so the audit trail still says
//! what was done ("mysql -u app -p[REDACTED]").
use prometheus_client::metrics::counter::Counter;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::sync::LazyLock;

use crate::model::file_name;
use crate::telemetry::metrics::{Bounded, Metrics, PatternLabels};

pub const MASK: &str = "[REDACTED]";

/// `sinks.redaction` in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    pub enabled: bool,
    /// Extra regexes. With a capture group named `secret` only that group is replaced, otherwise the
    /// whole match is.
    pub extra_patterns: Vec<ExtraPattern>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            extra_patterns: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraPattern {
    pub name: String,
    pub regex: String,
}

impl RedactionConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, p) in self.extra_patterns.iter().enumerate() {
            let field = format!("sinks.redaction.extra_patterns[{i}]");
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err((
                    format!("{field}.name"),
                    format!(
                        "{:?}: use letters, digits and _ (it is a metric label)",
                        p.name
                    ),
                ));
            }
            if BUILTIN.iter().any(|b| b.0 == p.name) {
                return Err((
                    format!("{field}.name"),
                    format!("{:?} is a built-in pattern name", p.name),
                ));
            }
            Regex::new(&p.regex)
                .map_err(|e| (format!("{field}.regex"), format!("invalid regex: {e}")))?;
        }
        Ok(())
    }
}

/// Built-in in-argument patterns: (name, regex). A group named `secret` is what gets replaced.
const BUILTIN: &[(&str, &str)] = &[
    (
        "private_key",
        r"(?s)(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----.*)",
    ),
    (
        "url_credentials",
        r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<secret>[^@/\s]+)@",
    ),
    (
        "url_token",
        r"(?i)\bhttps?://(?P<secret>[A-Za-z0-9_.~-]{16,})@",
    ),
    (
        "authorization_header",
        r"(?i)\b(?:authorization|proxy-authorization)\s*:\s*(?:bearer|basic|token|digest)?\s*(?P<secret>[^\s'\x22]+)",
    ),
    (
        "bearer_token",
        r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    ),
    (
        "aws_access_key_id",
        r"\b(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16})\b",
    ),
    (
        "known_token",
        r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    ),
    (
        "flag_value",
        r"(?i)^--?[a-z0-9_.-]*(?:password|passwd|passphrase|pass|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|client[-_]?secret|credentials?)[a-z0-9_.-]*=(?P<secret>.+)$",
    ),
    (
        "env_assignment",
        r"(?i)^[a-z_][a-z0-9_]*(?:password|passwd|pass|pwd|secret|token|api_?key|access_?key|private_?key|credentials?)[a-z0-9_]*=(?P<secret>.+)$",
    ),
    ("user_password", r"^(?P<user>[^:\s]+):(?P<secret>.+)$"),
    (
        "secret_header",
        r"(?i)(?:^|[\s'\x22])(?:x-api-key|api-key|apikey|x-auth-token|x-access-token|private-token|x-vault-token|x-amz-security-token|x-goog-api-key|x-session-token|x-csrf-token|x-[a-z0-9-]*(?:token|key|secret|password))\s*:\s*(?P<secret>[^\s'\x22]+)",
    ),
    (
        "cookie_header",
        r"(?i)(?:^|[\s'\x22])(?:cookie|set-cookie)\s*:\s*(?P<secret>[^'\x22\r\n]+)",
    ),
    (
        "key_value",
        r"(?i)(?:^|[\s,;&?'\x22(])[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credentials?)\s*=\s*['\x22]?(?P<secret>[^\s,;&'\x22)]+)",
    ),
];

/// Built-in patterns anchored to a whole argument (`^…$`): applied to single words only, never to a
/// whole command string (where they would swallow the rest of it).
const ANCHORED: &[&str] = &["flag_value", "env_assignment", "user_password"];

/// Programs whose `-c` argument is a command line.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox", "su", "runuser",
];

/// Nested command strings (`sh -c "bash -c '…'"`) are followed this deep.
const MAX_DEPTH: usize = 4;

/// Redaction passes over one argv at most (see [`Redactor::redact`]).
const MAX_PASSES: usize = 8;

/// Flags whose NEXT argument is a secret, for every program. ASCII case does not matter.
fn is_secret_flag(arg: &str) -> bool {
    let Some(name) = arg
        .strip_prefix("--")
        .or_else(|| arg.strip_prefix('-').filter(|n| n.len() > 1))
    else {
        return false;
    };
    if name.contains('=')
        || ["-file", "_file", "-path", "-stdin"]
            .iter()
            .any(|s| ends_with_ignore_case(name, s))
    {
        return false;
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        "access-key",
        "secret-key",
        "private-key",
        "client-secret",
        "auth-token",
        "credentials",
    ];
    // `name` is the word, or ends with `-word` / `_word`.
    WORDS.iter().any(|w| {
        ends_with_ignore_case(name, w) && {
            let rest = &name.as_bytes()[..name.len() - w.len()];
            rest.is_empty() || matches!(rest.last(), Some(b'-' | b'_'))
        }
    })
}

/// `s` ends with the lowercase ASCII `suffix`, in any ASCII case.
fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Short flags whose value is a secret, per program: (programs, flag, value may be attached).
/// Container tools only mean a password with `login` (`docker run -p` is a port).
const TOOL_FLAGS: &[(&[&str], &str, bool)] = &[
    (
        &[
            "mysql",
            "mysqldump",
            "mysqladmin",
            "mariadb",
            "mariadb-dump",
            "mysqlimport",
            "mysqlshow",
        ],
        "-p",
        true,
    ),
    (&["sshpass"], "-p", true),
    (&["redis-cli", "keydb-cli"], "-a", false),
    (
        &[
            "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras",
        ],
        "-p",
        false,
    ),
    (
        &[
            "mongo",
            "mongosh",
            "mongodump",
            "mongorestore",
            "mongoexport",
        ],
        "-p",
        false,
    ),
    (&["openssl"], "-passin", false),
    (&["openssl"], "-passout", false),
    (&["openssl"], "-k", false),
    (&["zip", "7z", "unrar"], "-P", false),
];

/// Programs whose `-p` is a password only in their `login` subcommand.
const LOGIN_TOOLS: &[&str] = &[
    "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras",
];

/// Programs whose `-u/--user USER:PASS` carries a password.
const USER_PASS_TOOLS: &[&str] = &["curl", "wget"];

struct Compiled {
    name: String,
    re: Regex,
    counter: Counter,
}

pub struct Redactor {
    enabled: bool,
    patterns: Vec<Compiled>,
    /// The patterns tried on a single-word argument and on one with spaces, as one set each: most
    /// arguments match none, and one pass of a set tells so (instead of one search per pattern).
    word: Prefilter,
    text: Prefilter,
    next_arg: Counter,
    tool_flag: Counter,
}

/// Some of the patterns as one `RegexSet`, with each set member's index in `patterns`.
struct Prefilter {
    set: RegexSet,
    index: Vec<usize>,
}

impl Prefilter {
    fn new(patterns: &[Compiled], single_word: bool) -> anyhow::Result<Prefilter> {
        let index: Vec<usize> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name != "user_password") // only meaningful after -u/--user
            .filter(|(_, p)| single_word || !ANCHORED.contains(&p.name.as_str()))
            .map(|(i, _)| i)
            .collect();
        let set = RegexSet::new(index.iter().map(|&i| patterns[i].re.as_str()))?;
        Ok(Prefilter { set, index })
    }
}

impl Redactor {
    pub fn new(config: &RedactionConfig, metrics: &Metrics) -> anyhow::Result<Redactor> {
        let counter = |name: &str| {
            metrics
                .redactions
                .get_or_create(&PatternLabels {
                    pattern: Bounded::from_closed_set(name),
                })
                .clone()
        };
        let mut patterns = Vec::new();
        for (name, re) in BUILTIN {
            patterns.push(Compiled {
                name: (*name).into(),
                re: Regex::new(re)?,
                counter: counter(name),
            });
        }
        for p in &config.extra_patterns {
            let re = Regex::new(&p.regex)
                .map_err(|e| anyhow::anyhow!("sinks.redaction.extra_patterns {}: {e}", p.name))?;
            patterns.push(Compiled {
                name: p.name.clone(),
                re,
                counter: counter(&p.name),
            });
        }
        Ok(Redactor {
            enabled: config.enabled,
            word: Prefilter::new(&patterns, true)?,
            text: Prefilter::new(&patterns, false)?,
            patterns,
            next_arg: counter("secret_flag_argument"),
            tool_flag: counter("tool_password_flag"),
        })
    }

    /// Redacts argv in place. Returns how many secrets were replaced.
    pub fn redact(&self, args: &mut [String]) -> usize {
        if !self.enabled || args.is_empty() {
            return 0;
        }
        // Until nothing changes (bounded): a replacement inside a nested command string can reveal
        // a structure the first pass could not see. Found by the redactor fuzz target.
        let mut total = 0;
        for _ in 0..MAX_PASSES {
            let n = self.redact_argv(args, 0);
            total += n;
            if n == 0 {
                break;
            }
        }
        total
    }

    // Long on purpose: one walk over argv where each argument's meaning depends on the ones before it (the
    // tool named so far, a flag whose value comes next), so the cases stay in one loop.
    fn redact_argv(&self, args: &mut [String], depth: usize) -> usize {
        if args.is_empty() {
            return 0;
        }
        // The tool named so far, as its table entry (`None`: no tool whose flags the redactor knows).
        let mut prog = tool(file_name(&args[0]));
        let is_login = args.iter().any(|a| a == "login");
        let mut n = 0;
        let mut i = 0;
        while i < args.len() {
            // A known tool later in argv (`sudo mysql …`, `env X=1 mysql …`, `docker exec c mysql …`)
            // decides what the flags after it mean.
            if i > 0 {
                if let Some(t) = tool(file_name(&args[i])) {
                    prog = Some(t);
                    i += 1;
                    continue;
                }
            }
            // Flags whose next argument is the secret.
            if i > 0 && i + 1 < args.len() && is_secret_flag(&args[i]) {
                n += mask(&mut args[i + 1], &self.next_arg);
                i += 2;
                continue;
            }
            if let Some(prog) = prog {
                // Program-specific short flags.
                let login_only = LOGIN_TOOLS.contains(&prog);
                if let Some((_, flag, attached)) = TOOL_FLAGS.iter().find(|(progs, flag, _)| {
                    progs.contains(&prog)
                        && (args[i] == *flag || args[i].starts_with(flag))
                        && (!login_only || is_login)
                }) {
                    if args[i] == *flag {
                        if (!attached || (*flag == "-p" && prog == "sshpass")) && i + 1 < args.len()
                        {
                            n += mask(&mut args[i + 1], &self.tool_flag);
                            i += 2;
                            continue;
                        }
                    } else if *attached
                        && args[i].len() > flag.len()
                        && !args[i].starts_with("--")
                        && args[i][flag.len()..] != *MASK
                    {
                        args[i] = format!("{flag}{MASK}");
                        self.tool_flag.inc();
                        n += 1;
                        i += 1;
                        continue;
                    }
                }
                // curl/wget -u USER:PASS.
                if USER_PASS_TOOLS.contains(&prog)
                    && (args[i] == "-u" || args[i] == "--user")
                    && i + 1 < args.len()
                {
                    if let Some((user, pass)) = args[i + 1].split_once(':') {
                        if pass != MASK {
                            args[i + 1] = format!("{user}:{MASK}");
                            self.count("user_password");
                            n += 1;
                        }
                    }
                    i += 2;
                    continue;
                }
            }
            let spaced = has_whitespace(&args[i]);
            let command_string = i > 0
                && depth < MAX_DEPTH
                && spaced
                && ((prog.is_some_and(|p| SHELLS.contains(&p)) && is_command_flag(&args[i - 1]))
                    || prog == Some("ssh")
                    || args[i]
                        .split_whitespace()
                        .next()
                        .is_some_and(|w| tool(file_name(w)).is_some()));
            if command_string {
                n += self.redact_command_string(&mut args[i], depth + 1);
            } else {
                n += self.redact_patterns(&mut args[i], !spaced);
            }
            i += 1;
        }
        n
    }

    /// A command line inside one argument (`sh -c "…"`): the unanchored patterns over the whole
    /// string, then its shell words as argv (per command, leading `VAR=value` skipped), and every
    /// changed word's secret replaced where it stands in the original — the rest of the string stays
    /// byte for byte.
    fn redact_command_string(&self, s: &mut String, depth: usize) -> usize {
        let mut n = self.redact_patterns(s, false);
        let orig: Vec<String> = match shell_words::split(s) {
            Ok(w) => w,
            Err(_) => s.split_whitespace().map(str::to_string).collect(),
        }
        .into_iter()
        .flat_map(split_operators)
        .collect();
        let mut words = orig.clone();
        let mut start = 0;
        for k in 0..=words.len() {
            if k < words.len() && !is_operator(&words[k]) {
                continue;
            }
            let seg = &mut words[start..k];
            let mut j = 0;
            while j < seg.len() && is_assignment(&seg[j]) {
                n += self.redact_patterns(&mut seg[j], true);
                j += 1;
            }
            n += self.redact_argv(&mut seg[j..], depth);
            start = k + 1;
        }
        let mut out = s.clone();
        let mut cursor = 0;
        for (o, w) in orig.iter().zip(&words) {
            // Words are searched near the cursor only (quoting at most doubles a word, plus
            // separators): linear in the string, whatever a hostile command line holds.
            let window = |len: usize| {
                let mut end = (cursor + 2 * len + 64).min(out.len());
                while !out.is_char_boundary(end) {
                    end += 1;
                }
                &out[cursor..end]
            };
            if o == w {
                if let Some(p) = window(o.len()).find(o.as_str()) {
                    cursor += p + o.len();
                }
                continue;
            }
            let (secret, replacement) = difference(o, w);
            match window(o.len()).find(secret) {
                Some(p) if !secret.is_empty() => {
                    let at = cursor + p;
                    out.replace_range(at..at + secret.len(), replacement);
                    cursor = at + replacement.len();
                }
                _ => {
                    // The secret is quoted or escaped in a way a plain search cannot find: re-join
                    // the redacted words (quoting may change; no text but the secret is lost).
                    *s = shell_words::join(&words);
                    return n;
                }
            }
        }
        *s = out;
        n
    }

    fn count(&self, name: &str) {
        if let Some(p) = self.patterns.iter().find(|p| p.name == name) {
            p.counter.inc();
        }
    }

    /// Applies the patterns to one argument; `anchored` patterns only when it is a single word.
    fn redact_patterns(&self, arg: &mut String, single_word: bool) -> usize {
        let filter = if single_word { &self.word } else { &self.text };
        if !filter.set.is_match(arg) {
            return 0;
        }
        let mut n = 0;
        for &i in &filter.index {
            let p = &self.patterns[i];
            if !p.re.is_match(arg) {
                continue;
            }
            let mut out = String::with_capacity(arg.len());
            let mut last = 0;
            let mut hits = 0;
            for caps in p.re.captures_iter(arg) {
                let m = caps
                    .name("secret")
                    .or_else(|| caps.get(0))
                    .expect("group 0 always exists");
                if m.as_str() == MASK || m.start() < last {
                    continue;
                }
                out.push_str(&arg[last..m.start()]);
                out.push_str(MASK);
                last = m.end();
                hits += 1;
            }
            if hits > 0 {
                out.push_str(&arg[last..]);
                *arg = out;
                p.counter.inc_by(hits);
                n += hits as usize;
            }
        }
        n
    }
}

/// Replaces a secret argument with the mask, counted in `counter`, unless it is masked already;
/// returns how many were replaced.
fn mask(arg: &mut String, counter: &Counter) -> usize {
    if arg == MASK {
        return 0;
    }
    *arg = MASK.into();
    counter.inc();
    1
}

/// The programs known besides those of [`TOOL_FLAGS`]: shells and ssh, whose arguments can be
/// command lines, and the `-u USER:PASS` tools.
const OTHER_TOOLS: [&[&str]; 3] = [USER_PASS_TOOLS, SHELLS, &["ssh"]];

/// Every program whose flags the redactor knows, as the tables spell it: looked up for every argument.
static TOOLS: LazyLock<foldhash::HashSet<&'static str>> = LazyLock::new(|| {
    TOOL_FLAGS
        .iter()
        .map(|(progs, _, _)| *progs)
        .chain(OTHER_TOOLS)
        .flatten()
        .copied()
        .collect()
});

/// The known program called `name`, if any (see [`TOOLS`]).
fn tool(name: &str) -> Option<&'static str> {
    TOOLS.get(name).copied()
}

/// Whether `s` holds whitespace (`char::is_whitespace`), settled byte by byte while it is ASCII.
fn has_whitespace(s: &str) -> bool {
    for &b in s.as_bytes() {
        if matches!(b, b' ' | b'\t'..=b'\r') {
            return true;
        }
        if !b.is_ascii() {
            return s.contains(char::is_whitespace);
        }
    }
    false
}

/// `-c`, `-lc`, `-ec`, `--command`: the next argument is a command line.
fn is_command_flag(a: &str) -> bool {
    a == "--command"
        || (a.len() >= 2
            && a.starts_with('-')
            && !a.starts_with("--")
            && a[1..].chars().all(|c| c.is_ascii_alphabetic())
            && a.contains('c'))
}

fn is_operator(w: &str) -> bool {
    matches!(
        w,
        ";" | "&&" | "||" | "|" | "&" | "(" | ")" | "{" | "}" | "!"
    )
}

/// `VAR=value` before a command.
fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `a;` → `a`, `;` (so `export X=1; mysql …` is two commands).
fn split_operators(w: String) -> Vec<String> {
    for op in ["&&", "||", ";", "|", "&"] {
        if w.len() > op.len() && w.ends_with(op) {
            let head = w[..w.len() - op.len()].to_string();
            return vec![head, op.to_string()];
        }
    }
    vec![w]
}

/// What changed between an original word and its redacted form: (secret, replacement).
fn difference<'a>(o: &'a str, w: &'a str) -> (&'a str, &'a str) {
    let mut pre = o.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
    while !o.is_char_boundary(pre) || !w.is_char_boundary(pre) {
        pre -= 1;
    }
    let (o2, w2) = (&o[pre..], &w[pre..]);
    let mut suf = o2
        .bytes()
        .rev()
        .zip(w2.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    while !o2.is_char_boundary(o2.len() - suf) || !w2.is_char_boundary(w2.len() - suf) {
        suf -= 1;
    }
    (&o2[..o2.len() - suf], &w2[..w2.len() - suf])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(&RedactionConfig::default(), &Metrics::default()).unwrap()
    }

    fn red(cmd: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        r().redact(&mut v);
        v
    }

    #[test]
    fn real_world_command_lines() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["mysql", "-u", "app", "-phunter2", "db"], &["mysql", "-u", "app", "-p[REDACTED]", "db"]),
            (&["mysql", "-u", "app", "-p", "db"], &["mysql", "-u", "app", "-p", "db"]),
            (&["mysqldump", "--password=hunter2", "db"], &["mysqldump", "--password=[REDACTED]", "db"]),
            (&["mysql", "--password", "hunter2"], &["mysql", "--password", "[REDACTED]"]),
            (&["psql", "postgresql://app:s3cr3t@db:5432/app"], &["psql", "postgresql://app:[REDACTED]@db:5432/app"]),
            (&["psql", "-h", "db", "-U", "app"], &["psql", "-h", "db", "-U", "app"]),
            (&["curl", "-u", "admin:hunter2", "https://x"], &["curl", "-u", "admin:[REDACTED]", "https://x"]),
            (&["curl", "--user", "admin:pw", "https://x"], &["curl", "--user", "admin:[REDACTED]", "https://x"]),
            (&["curl", "-H", "Authorization: Bearer abc.def.ghi123", "https://x"], &["curl", "-H", "Authorization: Bearer [REDACTED]", "https://x"]),
            (&["curl", "-H", "authorization: token ghp_aaaaaaaaaaaaaaaaaaaaaaaa"], &["curl", "-H", "authorization: token [REDACTED]"]),
            (&["curl", "https://bob:pw@example.com/x"], &["curl", "https://bob:[REDACTED]@example.com/x"]),
            (&["wget", "--password=hunter2", "ftp://x"], &["wget", "--password=[REDACTED]", "ftp://x"]),
            (&["wget", "--http-password=hunter2", "http://x"], &["wget", "--http-password=[REDACTED]", "http://x"]),
            (&["git", "clone", "https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r"], &["git", "clone", "https://[REDACTED]@github.com/o/r"]),
            (&["git", "clone", "https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.com/o/r"], &["git", "clone", "https://oauth2:[REDACTED]@gitlab.com/o/r"]),
            (&["git", "-c", "http.extraheader=Authorization: Bearer tok12345678", "fetch"], &["git", "-c", "http.extraheader=Authorization: Bearer [REDACTED]", "fetch"]),
            (&["aws", "configure", "set", "aws_secret_access_key", "wJalrXUtnFEMI"], &["aws", "configure", "set", "aws_secret_access_key", "wJalrXUtnFEMI"]),
            (&["env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "aws", "s3", "ls"], &["env", "AWS_SECRET_ACCESS_KEY=[REDACTED]", "aws", "s3", "ls"]),
            (&["aws", "sts", "x", "--access-key", "AKIAIOSFODNN7EXAMPLE"], &["aws", "sts", "x", "--access-key", "[REDACTED]"]),
            (&["echo", "AKIAIOSFODNN7EXAMPLE"], &["echo", "[REDACTED]"]),
            (&["docker", "login", "-u", "me", "-p", "hunter2", "reg"], &["docker", "login", "-u", "me", "-p", "[REDACTED]", "reg"]),
            (&["docker", "login", "--password", "hunter2", "reg"], &["docker", "login", "--password", "[REDACTED]", "reg"]),
            (&["docker", "login", "--password-stdin", "reg"], &["docker", "login", "--password-stdin", "reg"]),
            (&["sshpass", "-p", "hunter2", "ssh", "host"], &["sshpass", "-p", "[REDACTED]", "ssh", "host"]),
            (&["sshpass", "-phunter2", "ssh", "host"], &["sshpass", "-p[REDACTED]", "ssh", "host"]),
            (&["env", "PGPASSWORD=hunter2", "psql"], &["env", "PGPASSWORD=[REDACTED]", "psql"]),
            (&["env", "MYSQL_PWD=hunter2", "mysql"], &["env", "MYSQL_PWD=[REDACTED]", "mysql"]),
            (&["env", "GITHUB_TOKEN=abc", "gh"], &["env", "GITHUB_TOKEN=[REDACTED]", "gh"]),
            (&["redis-cli", "-a", "hunter2", "ping"], &["redis-cli", "-a", "[REDACTED]", "ping"]),
            (&["mongosh", "mongodb://root:hunter2@db:27017/admin"], &["mongosh", "mongodb://root:[REDACTED]@db:27017/admin"]),
            (&["mongodump", "-u", "root", "-p", "hunter2"], &["mongodump", "-u", "root", "-p", "[REDACTED]"]),
            (&["htpasswd", "-b", "/etc/htpasswd", "bob", "x"], &["htpasswd", "-b", "/etc/htpasswd", "bob", "x"]),
            (&["vault", "login", "-token=s.abcdef"], &["vault", "login", "-token=[REDACTED]"]),
            (&["app", "--api-key", "k123"], &["app", "--api-key", "[REDACTED]"]),
            (&["app", "--client-secret=abc"], &["app", "--client-secret=[REDACTED]"]),
            (&["openssl", "enc", "-k", "hunter2"], &["openssl", "enc", "-k", "[REDACTED]"]),
            (&["ssh-add", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----"], &["ssh-add", "[REDACTED]"]),
            (&["slack", "xoxb-1234567890-abcdefghij"], &["slack", "[REDACTED]"]),
            (&["curl", "-H", "X-Auth: eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0NTY.SflKxwRJSMeKKF2QT4"], &["curl", "-H", "X-Auth: [REDACTED]"]),
        ];
        assert!(cases.len() >= 30);
        for (input, want) in cases {
            assert_eq!(
                red(input),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "input: {input:?}"
            );
        }
    }

    /// The shapes that leaked on main (issue 12) and more: secrets inside shell command strings,
    /// header values, bare key=value pairs, tools later in argv. Only the secret changes.
    #[test]
    fn command_strings_headers_and_key_values() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["sh", "-c", "mysql -u root -phunter2 db"],
                &["sh", "-c", "mysql -u root -p[REDACTED] db"],
            ),
            (
                &[
                    "bash",
                    "-c",
                    "mysqldump -uroot -p'hunter2' db > /tmp/db.sql",
                ],
                &[
                    "bash",
                    "-c",
                    "mysqldump -uroot -p'[REDACTED]' db > /tmp/db.sql",
                ],
            ),
            (
                &["sh", "-c", "curl -u admin:hunter2 https://x/api"],
                &["sh", "-c", "curl -u admin:[REDACTED] https://x/api"],
            ),
            (
                &["sh", "-c", "sshpass -p hunter2 ssh user@host uptime"],
                &["sh", "-c", "sshpass -p [REDACTED] ssh user@host uptime"],
            ),
            (
                &["sh", "-c", "app --password hunter2 --verbose"],
                &["sh", "-c", "app --password [REDACTED] --verbose"],
            ),
            (
                &["sh", "-c", "app --password=hunter2 --verbose"],
                &["sh", "-c", "app --password=[REDACTED] --verbose"],
            ),
            (
                &[
                    "sh",
                    "-c",
                    "PGPASSWORD=hunter2 psql -h db -U app -c 'select 1'",
                ],
                &[
                    "sh",
                    "-c",
                    "PGPASSWORD=[REDACTED] psql -h db -U app -c 'select 1'",
                ],
            ),
            (
                &[
                    "bash",
                    "-lc",
                    "export MYSQL_PWD=hunter2; mysql -u app db < dump.sql",
                ],
                &[
                    "bash",
                    "-lc",
                    "export MYSQL_PWD=[REDACTED]; mysql -u app db < dump.sql",
                ],
            ),
            (
                &[
                    "sh",
                    "-ec",
                    "cd /srv && mysql -uapp -phunter2 app && echo done",
                ],
                &[
                    "sh",
                    "-ec",
                    "cd /srv && mysql -uapp -p[REDACTED] app && echo done",
                ],
            ),
            (
                &[
                    "sh",
                    "-c",
                    "curl -H 'X-Api-Key: abcdef123456' https://api/x",
                ],
                &["sh", "-c", "curl -H 'X-Api-Key: [REDACTED]' https://api/x"],
            ),
            (
                &[
                    "sh",
                    "-c",
                    "curl -H \"Authorization: Bearer tok.en.value123\" https://x | jq .",
                ],
                &[
                    "sh",
                    "-c",
                    "curl -H \"Authorization: Bearer [REDACTED]\" https://x | jq .",
                ],
            ),
            (
                &["sh", "-c", "redis-cli -a hunter2 ping; echo ok"],
                &["sh", "-c", "redis-cli -a [REDACTED] ping; echo ok"],
            ),
            (
                &["sh", "-c", "docker login -u me -p hunter2 registry.example"],
                &[
                    "sh",
                    "-c",
                    "docker login -u me -p [REDACTED] registry.example",
                ],
            ),
            (
                &[
                    "sh",
                    "-c",
                    "echo start; sh -c \"mysql -phunter2 db\"; echo end",
                ],
                &[
                    "sh",
                    "-c",
                    "echo start; sh -c \"mysql -p[REDACTED] db\"; echo end",
                ],
            ),
            (
                &["su", "-", "app", "-c", "mysql -phunter2 db"],
                &["su", "-", "app", "-c", "mysql -p[REDACTED] db"],
            ),
            (
                &["ssh", "host", "mysql -u app -phunter2 db"],
                &["ssh", "host", "mysql -u app -p[REDACTED] db"],
            ),
            (
                &["sh", "-c", "echo hunter2x; mysql -phunter2 db"],
                &["sh", "-c", "echo hunter2x; mysql -p[REDACTED] db"],
            ),
            (
                &["sh", "-c", "wget --password=hunter2 ftp://x/f -O /tmp/f"],
                &["sh", "-c", "wget --password=[REDACTED] ftp://x/f -O /tmp/f"],
            ),
            (
                &[
                    "sh",
                    "-c",
                    "git clone https://bob:hunter2@git.example/r.git /tmp/r",
                ],
                &[
                    "sh",
                    "-c",
                    "git clone https://bob:[REDACTED]@git.example/r.git /tmp/r",
                ],
            ),
            (
                &["sh", "-c", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI aws s3 ls"],
                &["sh", "-c", "AWS_SECRET_ACCESS_KEY=[REDACTED] aws s3 ls"],
            ),
            (
                &["sh", "-c", "mysql -p\"hunter 2\" db"],
                &["sh", "-c", "mysql -p\"[REDACTED]\" db"],
            ),
            (
                &["curl", "-H", "X-Api-Key: abcdef123456", "https://api/x"],
                &["curl", "-H", "X-Api-Key: [REDACTED]", "https://api/x"],
            ),
            (
                &["curl", "-H", "x-api-key:abcdef123456", "https://api/x"],
                &["curl", "-H", "x-api-key:[REDACTED]", "https://api/x"],
            ),
            (
                &[
                    "curl",
                    "-H",
                    "PRIVATE-TOKEN: glpat123456",
                    "https://gitlab/api",
                ],
                &[
                    "curl",
                    "-H",
                    "PRIVATE-TOKEN: [REDACTED]",
                    "https://gitlab/api",
                ],
            ),
            (
                &["curl", "-H", "X-Vault-Token: hvs.abcdef", "https://vault"],
                &["curl", "-H", "X-Vault-Token: [REDACTED]", "https://vault"],
            ),
            (
                &[
                    "curl",
                    "-H",
                    "Cookie: session=abc123; theme=dark",
                    "https://x",
                ],
                &["curl", "-H", "Cookie: [REDACTED]", "https://x"],
            ),
            (
                &["curl", "-H", "X-Auth-Token: abcdef", "https://x"],
                &["curl", "-H", "X-Auth-Token: [REDACTED]", "https://x"],
            ),
            (
                &[
                    "curl",
                    "-H",
                    "Proxy-Authorization: Basic Ym9iOnB3",
                    "https://x",
                ],
                &[
                    "curl",
                    "-H",
                    "Proxy-Authorization: Basic [REDACTED]",
                    "https://x",
                ],
            ),
            (
                &["http", "https://api/x", "X-Custom-Secret:abc"],
                &["http", "https://api/x", "X-Custom-Secret:[REDACTED]"],
            ),
            (
                &["app", "password=hunter2"],
                &["app", "password=[REDACTED]"],
            ),
            (
                &["app", "token=abc123", "mode=fast"],
                &["app", "token=[REDACTED]", "mode=fast"],
            ),
            (
                &["app", "--opts", "user=bob,password=hunter2,host=db"],
                &["app", "--opts", "user=bob,password=[REDACTED],host=db"],
            ),
            (
                &["psql", "host=db user=app password=hunter2 dbname=x"],
                &["psql", "host=db user=app password=[REDACTED] dbname=x"],
            ),
            (
                &["app", "jdbc:sqlserver://db;user=sa;password=hunter2;db=x"],
                &[
                    "app",
                    "jdbc:sqlserver://db;user=sa;password=[REDACTED];db=x",
                ],
            ),
            (
                &["curl", "https://api/x?api_key=abc123&page=2"],
                &["curl", "https://api/x?api_key=[REDACTED]&page=2"],
            ),
            (
                &[
                    "curl",
                    "-d",
                    "username=bob&password=hunter2",
                    "https://x/login",
                ],
                &[
                    "curl",
                    "-d",
                    "username=bob&password=[REDACTED]",
                    "https://x/login",
                ],
            ),
            (
                &["app", "client_secret=abc", "client_id=x"],
                &["app", "client_secret=[REDACTED]", "client_id=x"],
            ),
            (
                &["sudo", "mysql", "-phunter2"],
                &["sudo", "mysql", "-p[REDACTED]"],
            ),
            (
                &["env", "A=1", "mysql", "-u", "x", "-phunter2"],
                &["env", "A=1", "mysql", "-u", "x", "-p[REDACTED]"],
            ),
            (
                &["docker", "exec", "-it", "db", "mysql", "-phunter2"],
                &["docker", "exec", "-it", "db", "mysql", "-p[REDACTED]"],
            ),
            (
                &["timeout", "5", "sshpass", "-p", "hunter2", "ssh", "h"],
                &["timeout", "5", "sshpass", "-p", "[REDACTED]", "ssh", "h"],
            ),
            (
                &[
                    "kubectl",
                    "exec",
                    "pod",
                    "--",
                    "sh",
                    "-c",
                    "mysql -phunter2",
                ],
                &[
                    "kubectl",
                    "exec",
                    "pod",
                    "--",
                    "sh",
                    "-c",
                    "mysql -p[REDACTED]",
                ],
            ),
            (
                &["sh", "-c", "curl --user admin:hunter2 https://x"],
                &["sh", "-c", "curl --user admin:[REDACTED] https://x"],
            ),
            (
                &["sh", "-c", "app --api-key k123 run"],
                &["sh", "-c", "app --api-key [REDACTED] run"],
            ),
            (
                &["python3", "app.py", "--db-password", "hunter2"],
                &["python3", "app.py", "--db-password", "[REDACTED]"],
            ),
            (
                &[
                    "java",
                    "-Djavax.net.ssl.keyStorePassword=hunter2",
                    "-jar",
                    "a.jar",
                ],
                &[
                    "java",
                    "-Djavax.net.ssl.keyStorePassword=[REDACTED]",
                    "-jar",
                    "a.jar",
                ],
            ),
        ];
        assert!(cases.len() >= 46, "with the 39 above: at least 85 shapes");
        for (input, want) in cases {
            assert_eq!(
                red(input),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "input: {input:?}"
            );
        }
    }

    /// Every table row, as a set: at least 80 real-world shapes, and the redaction is idempotent (a
    /// second pass changes nothing and counts nothing).
    #[test]
    fn idempotent_and_counted() {
        let m = Metrics::default();
        let r = Redactor::new(&RedactionConfig::default(), &m).unwrap();
        let mut v: Vec<String> = ["sh", "-c", "PGPASSWORD=x psql; mysql -py"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(r.redact(&mut v), 2);
        let once = v.clone();
        assert_eq!(r.redact(&mut v), 0);
        assert_eq!(v, once);
    }

    /// The per-argument checks that skip work (no lowercase copy, a byte scan for whitespace, one
    /// table lookup for the tool) answer as the plain definitions do.
    #[test]
    fn fast_checks_agree_with_their_definitions() {
        for s in [
            "",
            "a",
            "a b",
            "a\tb",
            "a\u{0b}b",
            "a\rb",
            "é",
            "a\u{a0}b",
            "x\u{2003}y",
            "\u{85}",
            "ab\u{1680}",
            "--token",
            "é\x1f",
        ] {
            assert_eq!(has_whitespace(s), s.contains(char::is_whitespace), "{s:?}");
        }
        for (flag, secret) in [
            ("--PASSWORD", true),
            ("--Api-Key", true),
            ("-Db-Pass", true),
            ("--db_TOKEN", true),
            ("--TOKEN-FILE", false),
            ("--Password=x", false),
            ("--passwordx", false),
            ("-P", false),
            ("PASSWORD", false),
            ("--bypass", false),
        ] {
            assert_eq!(is_secret_flag(flag), secret, "{flag}");
        }
        let all: Vec<&str> = TOOL_FLAGS
            .iter()
            .flat_map(|(progs, _, _)| progs.iter())
            .chain(OTHER_TOOLS.iter().flat_map(|l| l.iter()))
            .copied()
            .collect();
        for name in &all {
            assert_eq!(tool(name), Some(*name));
        }
        for name in ["", "mysq", "mysqlx", "MYSQL", "/usr/bin/mysql", "curl "] {
            assert_eq!(tool(name), None, "{name:?}");
        }
    }

    #[test]
    fn leaves_ordinary_command_lines_untouched() {
        let untouched: &[&[&str]] = &[
            &["ls", "-p", "/tmp"],
            &["grep", "-r", "token", "src/"],
            &["ssh", "-p", "22", "host"],
            &["ps", "aux"],
            &["git", "log", "--author=x"],
            &["tar", "-xzf", "a.tar.gz"],
            &["curl", "https://example.com/path?page=2"],
            &["ssh", "git@github.com"],
            &["python3", "-m", "http.server", "8000"],
            &["docker", "run", "-p", "8080:80", "nginx"],
            &["kubectl", "get", "secrets"],
            &["cat", "/etc/passwd"],
            &["passwd", "bob"],
            &["mysql", "-u", "root", "-p"],
            &["openssl", "x509", "-in", "cert.pem", "-noout"],
            &["echo", "a:b"],
            &["sh", "-c", "ls -la /tmp && echo done"],
            &["sh", "-c", "grep -r token: src/ | wc -l"],
            &["bash", "-c", "for i in 1 2 3; do echo $i; done"],
            &["git", "commit", "-m", "fix --password handling"],
            &["echo", "my password is long"],
            &["curl", "-H", "Content-Type: application/json", "https://x"],
            &["curl", "-H", "Accept: */*", "https://x"],
            &["sh", "-c", "curl -H 'Accept: text/plain' https://x"],
            &["make", "CFLAGS=-O2", "all"],
            &["env", "PATH=/usr/bin", "LANG=C", "ls"],
            &["app", "--mode=fast", "--user=bob"],
            &["ssh", "host", "uptime && df -h"],
            &["psql", "-c", "select count(*) from users"],
            &["sudo", "mysql", "-p"],
            &["docker", "exec", "-it", "db", "mysql", "-u", "root", "-p"],
            &["sh", "-c", "echo 'unbalanced"],
        ];
        for input in untouched {
            assert_eq!(
                red(input),
                input.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "must stay: {input:?}"
            );
        }
    }

    #[test]
    fn counts_by_pattern_and_honours_extra_patterns_and_disable() {
        let m = Metrics::default();
        let cfg = RedactionConfig {
            enabled: true,
            extra_patterns: vec![ExtraPattern {
                name: "acme_key".into(),
                regex: "acme-(?P<secret>[0-9a-f]{8})".into(),
            }],
        };
        let r = Redactor::new(&cfg, &m).unwrap();
        let mut v = vec![
            "tool".to_string(),
            "--key-id=acme-deadbeef".to_string(),
            "acme-0badf00d".to_string(),
        ];
        r.redact(&mut v);
        assert_eq!(v[2], "acme-[REDACTED]");
        assert_eq!(
            m.redactions
                .get_or_create(&PatternLabels {
                    pattern: Bounded::from_closed_set("acme_key")
                })
                .get(),
            2
        );
        let off = Redactor::new(
            &RedactionConfig {
                enabled: false,
                extra_patterns: vec![],
            },
            &m,
        )
        .unwrap();
        let mut v = vec!["mysql".to_string(), "-phunter2".to_string()];
        assert_eq!(off.redact(&mut v), 0);
        assert_eq!(v[1], "-phunter2");
    }

    #[test]
    fn bad_extra_patterns_are_rejected_with_the_field() {
        let cfg = RedactionConfig {
            enabled: true,
            extra_patterns: vec![ExtraPattern {
                name: "x".into(),
                regex: "(".into(),
            }],
        };
        let (field, msg) = cfg.validate().unwrap_err();
        assert_eq!(field, "sinks.redaction.extra_patterns[0].regex");
        assert!(msg.contains("invalid regex"));
        let cfg = RedactionConfig {
            enabled: true,
            extra_patterns: vec![ExtraPattern {
                name: "bad name".into(),
                regex: "x".into(),
            }],
        };
        assert!(cfg.validate().unwrap_err().0.ends_with(".name"));
    }
}
