//! Canonical identity of what a process runs: the executable as the kernel resolved it, and — when the
//! executable is an interpreter — the script it runs.
//!
//! The same binary must get the same key however it was started (`/bin/bash`, `/usr/bin/bash` on a
//! merged-/usr host, `./x`, `//tmp/x`, `/usr/../tmp/x`, a symlink, a symlinked directory) and whether
//! tripline saw the exec or found the process in procfs at start. So:
//!
//! - **exe**: the new image's `mm->exe_file` as the exec probe resolved it from the kernel's dentries
//!   and mounts (no race with the process exiting or executing again); for files without a path (memfd)
//!   or when the walk failed, `/proc/PID/exe` while the process lives; otherwise the spelled path
//!   resolved against the working directory the probe resolved at exec (or the process's cwd in procfs,
//!   or, once it has exited, its parent's cwd — flagged), following symlinks and `.`/`..`; otherwise the
//!   spelled path, flagged as not resolved. A file starting with `#!` is a script: its interpreter is the
//!   exe.
//! - **script**: for a `#!` exec, the script file; for an interpreter started with a file argument
//!   (`bash /tmp/x.sh`, `python3 app.py`, `php -f x.php`), that file, resolved the same way. Inline code
//!   (`sh -c`, `python -c`, `perl -e`, `node -e`, `php -r`) and modules (`python -m`) have no script.
//!
//! Attacker-controlled and therefore never an identity: `comm` (prctl(PR_SET_NAME)), `argv[0]`, and the
//! file name alone (anyone can copy a binary under any name into a writable directory).
use std::path::{Component, Path, PathBuf};

use crate::model::{file_name, Text};

/// How a path was resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// The kernel's answer (`/proc/PID/exe`) or the spelled path resolved in the process's own context.
    #[default]
    Exact,
    /// Resolved against the parent's working directory (the process had exited).
    ParentCwd,
    /// Could not be resolved; the path is as spelled.
    Spelled,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Exact => "exact",
            Resolution::ParentCwd => "parent_cwd",
            Resolution::Spelled => "spelled",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Shared as it is stored (the process tree keeps it): built once, not copied again.
    pub exe: Text,
    pub script: Option<String>,
    pub resolution: Resolution,
}

/// Where to resolve relative paths for one process.
pub struct Context<'a> {
    pub procfs: &'a Path,
    pub pid: u32,
    pub ppid: u32,
    /// The working directory the kernel resolved at exec; procfs is asked when `None`.
    pub cwd: Option<&'a str>,
}

impl Context<'_> {
    fn link(&self, pid: u32, what: &str) -> Option<String> {
        std::fs::read_link(super::proc_path(self.procfs, pid, what))
            .ok()
            .map(|p| p.display().to_string())
    }

    /// `path` resolved for this process: (canonical path, how).
    fn resolve(&self, path: &str) -> Option<(String, Resolution)> {
        // Paths naming the process's own fds or itself must be read through its procfs entry.
        let own = |rest: &str| format!("/proc/{}/{rest}", self.pid);
        let path = if let Some(rest) = path.strip_prefix("/proc/self/") {
            own(rest)
        } else if let Some(n) = path.strip_prefix("/dev/fd/") {
            own(&format!("fd/{n}"))
        } else {
            path.to_string()
        };
        if path.starts_with('/') {
            return Some((canonical(&path), Resolution::Exact));
        }
        if let Some(cwd) = self.cwd {
            return Some((canonical(&format!("{cwd}/{path}")), Resolution::Exact));
        }
        if let Some(cwd) = self.link(self.pid, "cwd") {
            return Some((canonical(&format!("{cwd}/{path}")), Resolution::Exact));
        }
        let cwd = self.link(self.ppid, "cwd")?;
        Some((canonical(&format!("{cwd}/{path}")), Resolution::ParentCwd))
    }
}

/// `path` with symlinks, `.` and `..` resolved when it exists; otherwise normalised lexically.
pub fn canonical(path: &str) -> String {
    match std::fs::canonicalize(path) {
        Ok(p) => p.display().to_string(),
        Err(_) => lexical(path),
    }
}

/// `//`, `.` and `..` removed without touching the filesystem.
pub fn lexical(path: &str) -> String {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    let p: PathBuf = out.iter().collect();
    format!("/{}", p.display())
}

/// The identity of a process that just executed `spelled` with `args`; `kernel_exe` is the executable
/// the exec probe resolved (`ExecPaths::exe`).
pub fn at_exec(
    ctx: &Context<'_>,
    spelled: &str,
    kernel_exe: Option<&str>,
    args: &[String],
) -> Identity {
    if let Some(exe) = kernel_exe {
        // This event's image, whatever happened since. A different file was executed: a `#!` script.
        // The kernel's path has no symlink, `.` or `..` in it, so a file spelled exactly so is the
        // image itself: nothing to resolve (the usual case: shells execute the full path they found).
        let script = (spelled != exe)
            .then(|| ctx.resolve(spelled))
            .flatten()
            .filter(|(f, _)| f != exe && shebang(f).is_some())
            .map(|(f, _)| f)
            .or_else(|| script_argument(ctx, exe, args));
        return Identity {
            exe: Text::from(exe),
            script,
            resolution: Resolution::Exact,
        };
    }
    let (exe, script, resolution) = match (ctx.link(ctx.pid, "exe"), ctx.resolve(spelled)) {
        // Alive: the kernel's exe. A different file was executed: it was a `#!` script.
        // The file executed is not what runs now: a `#!` script (its interpreter runs), or the process
        // has executed again since this event (a launcher that re-execs), when this event's image is
        // the file.
        (Some(exe), Some((f, r)))
            if f != exe && !exe.starts_with("/memfd:") && !exe.ends_with(" (deleted)") =>
        {
            match shebang(&f) {
                Some(_) => (exe, Some(f), r),
                None => (f, None, r),
            }
        }
        (Some(exe), Some((_, r))) => (exe, None, r),
        (Some(exe), None) => (exe, None, Resolution::Exact),
        (None, Some((f, r))) => match shebang(&f) {
            Some(interp) => (canonical(&interp), Some(f), r),
            None => (f, None, r),
        },
        (None, None) => (spelled.to_string(), None, Resolution::Spelled),
    };
    let script = script.or_else(|| script_argument(ctx, &exe, args));
    Identity {
        exe: exe.into(),
        script,
        resolution,
    }
}

/// The identity of a process found in procfs (`exe` is `/proc/PID/exe`).
pub fn from_procfs(ctx: &Context<'_>, exe: &str, args: &[String]) -> Identity {
    Identity {
        exe: Text::from(exe),
        script: script_argument(ctx, exe, args),
        resolution: Resolution::Exact,
    }
}

/// The interpreter named by a `#!` line.
fn shebang(path: &str) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(str::to_string)
}

/// How an interpreter's command line names the program it runs.
struct Interpreter {
    /// Options whose presence means the code is inline (or a module), not a file.
    inline: &'static [&'static str],
    /// Options that take the next argument as their value.
    takes_value: &'static [&'static str],
    /// Options whose next argument is the script file.
    file_flag: &'static [&'static str],
    /// Short options may be combined (`-ec`): any of `inline`'s letters inside one marks inline code.
    combined_short: bool,
}

const SHELL: Interpreter = Interpreter {
    inline: &["-c"],
    takes_value: &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
    file_flag: &[],
    combined_short: true,
};
const PYTHON: Interpreter = Interpreter {
    inline: &["-c", "-m"],
    takes_value: &["-W", "-X", "-Q"],
    file_flag: &[],
    combined_short: false,
};
const PERL: Interpreter = Interpreter {
    inline: &["-e", "-E"],
    takes_value: &["-I", "-M", "-m"],
    file_flag: &[],
    combined_short: false,
};
const RUBY: Interpreter = Interpreter {
    inline: &["-e"],
    takes_value: &["-I", "-r", "-C", "-E"],
    file_flag: &[],
    combined_short: false,
};
const NODE: Interpreter = Interpreter {
    inline: &["-e", "--eval", "-p", "--print"],
    takes_value: &["-r", "--require", "--import", "--loader"],
    file_flag: &[],
    combined_short: false,
};
const PHP: Interpreter = Interpreter {
    inline: &["-r"],
    takes_value: &["-c", "-d", "-z"],
    file_flag: &["-f"],
    combined_short: false,
};
const LUA: Interpreter = Interpreter {
    inline: &["-e"],
    takes_value: &["-l"],
    file_flag: &[],
    combined_short: false,
};

/// The interpreter family of an executable name: `python3.11` is python, `php8.2` is php.
fn interpreter(exe: &str) -> Option<&'static Interpreter> {
    let name = file_name(exe);
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match base {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "fish" | "csh" | "tcsh" => &SHELL,
        "python" | "pypy" => &PYTHON,
        "perl" => &PERL,
        "ruby" => &RUBY,
        "node" | "nodejs" | "deno" | "bun" => &NODE,
        "php" | "php-cli" => &PHP,
        "lua" | "luajit" => &LUA,
        _ => return None,
    })
}

/// The script an interpreter was started with, resolved; `None` for inline code or no file argument.
fn script_argument(ctx: &Context<'_>, exe: &str, args: &[String]) -> Option<String> {
    let interp = interpreter(exe)?;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.as_str();
        if a == "--" {
            return it.next().and_then(|s| resolved_script(ctx, s));
        }
        if interp.inline.contains(&a) {
            return None;
        }
        if interp.file_flag.contains(&a) {
            return it.next().and_then(|s| resolved_script(ctx, s));
        }
        if interp.takes_value.contains(&a) {
            it.next();
            continue;
        }
        if let Some(short) = a.strip_prefix('-').filter(|s| !s.starts_with('-')) {
            let inline_letters = interp
                .inline
                .iter()
                .filter_map(|o| o.strip_prefix('-').filter(|l| l.len() == 1));
            if interp.combined_short && inline_letters.clone().any(|l| short.contains(l)) {
                return None;
            }
            continue;
        }
        if a.starts_with('-') || a.starts_with('+') {
            continue;
        }
        return resolved_script(ctx, a);
    }
    None
}

fn resolved_script(ctx: &Context<'_>, spelled: &str) -> Option<String> {
    if spelled.is_empty() {
        return None;
    }
    Some(
        ctx.resolve(spelled)
            .map(|(p, _)| p)
            .unwrap_or_else(|| spelled.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            procfs: Path::new("/proc"),
            pid: std::process::id(),
            ppid: 0,
            cwd: None,
        }
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lexical_spellings_agree() {
        for p in [
            "//tmp/x",
            "/usr/../tmp/x",
            "/tmp/./x",
            "/tmp//x/",
            "/a/b/../../tmp/x",
        ] {
            assert_eq!(lexical(p), "/tmp/x", "{p}");
        }
    }

    #[test]
    fn symlinked_directories_resolve_to_one_path() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("x"), "").unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("alias")).unwrap();
        let want = canonical(&real.join("x").display().to_string());
        for spelled in [d.path().join("alias/x"), d.path().join("alias/../real/./x")] {
            assert_eq!(canonical(&spelled.display().to_string()), want);
        }
    }

    #[test]
    fn interpreter_scripts_and_inline_code() {
        let c = ctx();
        let cwd = std::env::current_dir().unwrap().display().to_string();
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("/usr/bin/bash", &["bash", "/tmp/x.sh"], Some("/tmp/x.sh")),
            (
                "/usr/bin/bash",
                &["bash", "-e", "/tmp//x.sh", "a"],
                Some("/tmp/x.sh"),
            ),
            ("/usr/bin/bash", &["bash", "-c", "echo /tmp/x.sh"], None),
            ("/usr/bin/dash", &["sh", "-ec", "echo hi"], None),
            (
                "/usr/bin/bash",
                &["bash", "-o", "pipefail", "/tmp/y"],
                Some("/tmp/y"),
            ),
            (
                "/usr/bin/python3.11",
                &["python3", "-u", "/srv/app.py"],
                Some("/srv/app.py"),
            ),
            (
                "/usr/bin/python3.11",
                &["python3", "-m", "http.server"],
                None,
            ),
            ("/usr/bin/python3.11", &["python3", "-c", "print(1)"], None),
            ("/usr/bin/perl", &["perl", "-e", "print 1"], None),
            (
                "/usr/bin/php8.2",
                &["php", "-f", "/var/www/x.php"],
                Some("/var/www/x.php"),
            ),
            (
                "/usr/bin/node",
                &["node", "-r", "dotenv/config", "server.js"],
                Some(""),
            ),
            ("/usr/bin/true", &["true", "/tmp/x"], None),
            ("/usr/bin/bash", &["bash"], None),
        ];
        for (exe, a, want) in cases {
            let got = script_argument(&c, exe, &args(a));
            let want = want.map(|w| {
                if w.is_empty() {
                    format!("{cwd}/server.js")
                } else {
                    w.to_string()
                }
            });
            assert_eq!(got, want, "{exe} {a:?}");
        }
    }

    #[test]
    fn shebang_scripts_run_their_interpreter() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("run.sh");
        std::fs::write(&s, "#!/bin/sh -e\necho hi\n").unwrap();
        // A process that no longer exists: resolved from the file itself.
        let gone = Context {
            procfs: Path::new("/nonexistent-procfs"),
            pid: 1,
            ppid: 0,
            cwd: None,
        };
        let id = at_exec(
            &gone,
            &s.display().to_string(),
            None,
            &args(&["/bin/sh", "-e", "x"]),
        );
        assert_eq!(id.exe, canonical("/bin/sh"));
        assert_eq!(
            id.script.as_deref(),
            Some(canonical(&s.display().to_string()).as_str())
        );
        assert_eq!(id.resolution, Resolution::Exact);
        let rel = at_exec(&gone, "./nowhere", None, &[]);
        assert_eq!(
            (rel.exe.as_str(), rel.resolution),
            ("./nowhere", Resolution::Spelled)
        );
    }

    /// With the kernel's executable and working directory, a process that is already gone keeps its
    /// exact identity: `./x` in a directory, a relative `#!` script, a relative script argument.
    #[test]
    fn kernel_paths_identify_processes_that_are_gone() {
        let d = tempfile::tempdir().unwrap();
        let dir = canonical(&d.path().display().to_string());
        std::fs::write(d.path().join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        let gone = Context {
            procfs: Path::new("/nonexistent-procfs"),
            pid: 1,
            ppid: 0,
            cwd: Some(&dir),
        };
        let payload = format!("{dir}/payload");
        let id = at_exec(&gone, "./payload", Some(&payload), &args(&["./payload"]));
        assert_eq!((id.exe.as_str(), id.script), (payload.as_str(), None));
        assert_eq!(id.resolution, Resolution::Exact);

        let sh = canonical("/bin/sh");
        let script = format!("{dir}/run.sh");
        let id = at_exec(&gone, "./run.sh", Some(&sh), &args(&["./run.sh"]));
        assert_eq!(
            (id.exe.as_str(), id.script.as_deref()),
            (sh.as_str(), Some(script.as_str()))
        );

        let id = at_exec(&gone, "/bin/sh", Some(&sh), &args(&["sh", "run.sh"]));
        assert_eq!(id.script.as_deref(), Some(script.as_str()));
        // Spelled as the kernel's path: the image itself, no script (nothing is resolved).
        let id = at_exec(&gone, &sh, Some(&sh), &args(&["sh"]));
        assert_eq!((id.exe.as_str(), id.script), (sh.as_str(), None));
        // A script by its absolute path is still a script.
        let id = at_exec(&gone, &script, Some(&sh), &args(&[&script]));
        assert_eq!(id.script.as_deref(), Some(script.as_str()));

        // A deleted executable keeps the kernel's marker, like /proc/PID/exe.
        let id = at_exec(
            &gone,
            "/tmp/gone",
            Some("/tmp/gone (deleted)"),
            &args(&["x"]),
        );
        assert_eq!(id.exe, "/tmp/gone (deleted)");
    }
}
