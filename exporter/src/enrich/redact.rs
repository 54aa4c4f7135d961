//! Secret redaction in command lines, applied to argv right after decode — before the process tree
//! stores it, so no detector output, sink or API ever sees the secret (parents' argv included).
//!
//! Only the secret is replaced by `[REDACTED]`; the flag or key stays, so the audit trail still says
//! what was done ("mysql -u app -p[REDACTED]").
use prometheus_client::metrics::counter::Counter;
use regex::Regex;
use serde::Deserialize;

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
];

/// Flags whose NEXT argument is a secret, for every program.
fn is_secret_flag(arg: &str) -> bool {
    let a = arg.to_ascii_lowercase();
    let Some(name) = a
        .strip_prefix("--")
        .or_else(|| a.strip_prefix('-').filter(|n| n.len() > 1))
    else {
        return false;
    };
    if name.contains('=')
        || name.ends_with("-file")
        || name.ends_with("_file")
        || name.ends_with("-path")
        || name.ends_with("-stdin")
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
    WORDS
        .iter()
        .any(|w| name == *w || name.ends_with(&format!("-{w}")) || name.ends_with(&format!("_{w}")))
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
    next_arg: Counter,
    tool_flag: Counter,
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
        let prog = args[0].rsplit('/').next().unwrap_or("").to_string();
        let mut n = 0;
        let mut i = 0;
        while i < args.len() {
            // Flags whose next argument is the secret.
            if i > 0 && i + 1 < args.len() && is_secret_flag(&args[i]) {
                args[i + 1] = MASK.into();
                self.next_arg.inc();
                n += 1;
                i += 2;
                continue;
            }
            // Program-specific short flags.
            let login_only = LOGIN_TOOLS.contains(&prog.as_str());
            let is_login = args.iter().any(|a| a == "login");
            if let Some((_, flag, attached)) = TOOL_FLAGS.iter().find(|(progs, flag, _)| {
                progs.contains(&prog.as_str())
                    && (args[i] == *flag || args[i].starts_with(flag))
                    && (!login_only || is_login)
            }) {
                if args[i] == *flag {
                    if !attached && i + 1 < args.len() {
                        args[i + 1] = MASK.into();
                        self.tool_flag.inc();
                        n += 1;
                        i += 2;
                        continue;
                    }
                    if *flag == "-p" && prog == "sshpass" && i + 1 < args.len() {
                        args[i + 1] = MASK.into();
                        self.tool_flag.inc();
                        n += 1;
                        i += 2;
                        continue;
                    }
                } else if *attached && args[i].len() > flag.len() && !args[i].starts_with("--") {
                    args[i] = format!("{flag}{MASK}");
                    self.tool_flag.inc();
                    n += 1;
                    i += 1;
                    continue;
                }
            }
            // curl/wget -u USER:PASS.
            if USER_PASS_TOOLS.contains(&prog.as_str())
                && (args[i] == "-u" || args[i] == "--user")
                && i + 1 < args.len()
            {
                if let Some((user, _)) = args[i + 1].split_once(':') {
                    args[i + 1] = format!("{user}:{MASK}");
                    self.count("user_password");
                    n += 1;
                }
                i += 2;
                continue;
            }
            n += self.redact_patterns(&mut args[i]);
            i += 1;
        }
        n
    }

    fn count(&self, name: &str) {
        if let Some(p) = self.patterns.iter().find(|p| p.name == name) {
            p.counter.inc();
        }
    }

    fn redact_patterns(&self, arg: &mut String) -> usize {
        let mut n = 0;
        for p in &self.patterns {
            if p.name == "user_password" {
                continue; // only meaningful after -u/--user
            }
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
