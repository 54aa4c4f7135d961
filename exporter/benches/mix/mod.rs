//! A recorded-shape mix of real wire records for the pipeline benchmarks: what a busy server's ring
//! buffer carries. Several thousand distinct processes under a realistic tree (systemd → sshd → bash,
//! cron → sh, nginx and a Python service), each forked, executed with a realistic argv, making
//! connections or serving them, touching watched files, and exiting. Records are the exact bytes the
//! probes write (`families::encode`, the inverse of decode). Deterministic: the same mix every run.
use std::mem::size_of;
use std::net::SocketAddr;

use tripline::families::encode;
use tripline_common::{kind, ExecEvent, FileEvent, ForkEvent, Header, NetEvent};

const TICK: u64 = 10_000_000;

/// Programs with argv templates (`{n}` is replaced by a per-process number).
const PROGRAMS: &[(&str, &[&str])] = &[
    (
        "/usr/bin/curl",
        &[
            "curl",
            "-fsS",
            "-o",
            "/tmp/out.{n}",
            "https://api.example.com/v1/items?page={n}",
        ],
    ),
    (
        "/usr/bin/git",
        &["git", "-C", "/srv/repo{n}", "fetch", "--prune", "origin"],
    ),
    ("/usr/bin/ls", &["ls", "-la", "/var/log/app"]),
    (
        "/usr/bin/grep",
        &["grep", "-rn", "ERROR", "/var/log/app/app-{n}.log"],
    ),
    (
        "/usr/bin/python3",
        &[
            "python3",
            "/opt/app/worker.py",
            "--job",
            "{n}",
            "--queue",
            "default",
        ],
    ),
    (
        "/usr/bin/ssh",
        &["ssh", "-o", "BatchMode=yes", "backup@10.0.3.{n}", "true"],
    ),
    (
        "/usr/bin/psql",
        &[
            "psql",
            "-h",
            "10.0.0.7",
            "-U",
            "app",
            "-c",
            "select count(*) from jobs where id > {n}",
        ],
    ),
    (
        "/usr/bin/tar",
        &["tar", "czf", "/var/backups/etc-{n}.tgz", "/etc"],
    ),
    ("/usr/bin/awk", &["awk", "-F:", "{print $1}", "/etc/passwd"]),
    ("/usr/bin/sed", &["sed", "-n", "1,{n}p", "/var/log/syslog"]),
    ("/usr/bin/cat", &["cat", "/proc/meminfo"]),
    ("/usr/bin/date", &["date", "+%s"]),
    (
        "/usr/bin/find",
        &["find", "/var/tmp", "-mtime", "+{n}", "-delete"],
    ),
    (
        "/usr/bin/systemctl",
        &["systemctl", "is-active", "nginx.service"],
    ),
    (
        "/usr/bin/rsync",
        &[
            "rsync",
            "-a",
            "/srv/data/",
            "backup@10.0.3.9:/backups/host-{n}/",
        ],
    ),
    (
        "/usr/bin/wget",
        &["wget", "-q", "-O-", "http://10.0.0.5:8080/health?seq={n}"],
    ),
    (
        "/usr/local/bin/node",
        &["node", "/srv/web/server.js", "--port", "3000"],
    ),
    ("/usr/bin/apt-get", &["apt-get", "-qq", "update"]),
    ("/usr/bin/logrotate", &["logrotate", "/etc/logrotate.conf"]),
    ("/usr/bin/dig", &["dig", "+short", "host{n}.example.com"]),
];

/// Watched paths the file events touch (writes, renames, chmods under /etc and friends).
const FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/app/config.yml",
    "/etc/nginx/conf.d/site.conf",
    "/etc/logrotate.d/app",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/cron.d/backup",
];

struct Gen {
    out: Vec<Vec<u8>>,
    ktime: u64,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        k: u16,
        len: usize,
        pid: u32,
        start: u64,
        ppid: u32,
        pstart: u64,
        comm: &str,
    ) -> Header {
        self.ktime += 7_000; // ~140k events/s of kernel time
        let mut h = encode::header(k, len, pid);
        h.ktime_ns = self.ktime;
        h.ppid = ppid;
        h.start_ns = start;
        h.parent_start_ns = pstart;
        if k == kind::EXEC || k == kind::CONNECT {
            // The probes looked at fds 0 and 1 (none is a socket here).
            h.flags |= tripline_common::flags::STDIO_CHECKED;
        }
        h.comm = [0; 16];
        let c = comm.as_bytes();
        let n = c.len().min(15);
        h.comm[..n].copy_from_slice(&c[..n]);
        h
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Service processes: (pid, exe, argv, parent pid). Seeded by exec records so the tree knows them.
const SERVICES: &[(u32, &str, &[&str], u32)] = &[
    (1, "/usr/lib/systemd/systemd", &["/sbin/init"], 0),
    (600, "/usr/sbin/cron", &["/usr/sbin/cron", "-f"], 1),
    (
        700,
        "/usr/sbin/sshd",
        &["sshd: /usr/sbin/sshd -D [listener]"],
        1,
    ),
    (
        800,
        "/usr/sbin/nginx",
        &["nginx: master process /usr/sbin/nginx"],
        1,
    ),
    (850, "/usr/bin/python3", &["python3", "/opt/app/api.py"], 1),
    (900, "/usr/bin/bash", &["-bash"], 700),
];

/// `processes` short-lived processes (plus the services). About 8 records per process.
pub fn records(processes: u32) -> Vec<Vec<u8>> {
    let mut g = Gen {
        out: Vec::new(),
        ktime: 10_000_000_000,
    };
    let start_of = |pid: u32| u64::from(pid) * TICK;
    for (pid, exe, args, ppid) in SERVICES {
        let h = g.header(
            kind::EXEC,
            size_of::<ExecEvent>(),
            *pid,
            start_of(*pid),
            *ppid,
            start_of(*ppid),
            name_of(exe),
        );
        g.out.push(encode::exec_resolved(
            h,
            exe,
            args,
            Some((exe, 0)),
            Some("/"),
        ));
    }
    // The services listen.
    for (pid, port) in [(700u32, 22u16), (800, 443), (800, 80), (850, 8000)] {
        let h = g.header(
            kind::LISTEN,
            size_of::<NetEvent>(),
            pid,
            start_of(pid),
            1,
            start_of(1),
            "svc",
        );
        g.out.push(encode::net(
            h,
            SocketAddr::from(([0, 0, 0, 0], port)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
            0,
        ));
    }
    for n in 0..processes {
        let pid = 10_000 + n;
        let start = start_of(pid);
        // Parents: interactive shell, cron jobs, the Python service's workers.
        let (ppid, pcomm) = match n % 4 {
            0 | 1 => (900u32, "bash"),
            2 => (600, "cron"),
            _ => (850, "python3"),
        };
        let pstart = start_of(ppid);
        let (exe, argv) = PROGRAMS[(n as usize * 7 + n as usize / 13) % PROGRAMS.len()];
        let num = (n % 250).to_string();
        let args: Vec<String> = argv.iter().map(|a| a.replace("{n}", &num)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        let h = g.header(
            kind::FORK,
            size_of::<ForkEvent>(),
            ppid,
            pstart,
            1,
            start_of(1),
            pcomm,
        );
        g.out.push(encode::fork(h, pid, start));
        let h = g.header(
            kind::EXEC,
            size_of::<ExecEvent>(),
            pid,
            start,
            ppid,
            pstart,
            name_of(exe),
        );
        // As the probe records it: the kernel's executable and working directory.
        let cwd = match ppid {
            900 => "/root",
            850 => "/opt/app",
            _ => "/",
        };
        g.out.push(encode::exec_resolved(
            h,
            exe,
            &args,
            Some((exe, 0)),
            Some(cwd),
        ));
        let comm = name_of(exe);
        // Network: most processes connect once or twice; some are connected to.
        let connects = match n % 5 {
            0 => 2,
            1 | 2 => 1,
            _ => 0,
        };
        for c in 0..connects {
            let h = g.header(
                kind::CONNECT,
                size_of::<NetEvent>(),
                pid,
                start,
                ppid,
                pstart,
                comm,
            );
            let peer: SocketAddr = match (n + c) % 4 {
                0 => SocketAddr::from(([10, 0, 0, 7], 5432)),
                1 => SocketAddr::from(([93, 184, 216, (n % 200) as u8], 443)),
                2 => SocketAddr::from(([127, 0, 0, 1], 8000)),
                _ => SocketAddr::from(([10, 0, 3, (n % 250) as u8], 22)),
            };
            let result = if n % 50 == 0 { -111 } else { 0 };
            g.out.push(encode::net(
                h,
                SocketAddr::from(([10, 0, 0, 2], 40_000 + (n % 20_000) as u16)),
                peer,
                result,
            ));
        }
        // The web server and the API accept connections from clients.
        if n % 3 == 0 {
            let (spid, port) = if n % 2 == 0 {
                (800u32, 443u16)
            } else {
                (850, 8000)
            };
            let h = g.header(
                kind::ACCEPT,
                size_of::<NetEvent>(),
                spid,
                start_of(spid),
                1,
                start_of(1),
                "svc",
            );
            let peer = SocketAddr::from((
                [198, 51, 100, (n % 250) as u8],
                50_000 + (n % 10_000) as u16,
            ));
            g.out.push(encode::net(
                h,
                SocketAddr::from(([10, 0, 0, 2], port)),
                peer,
                0,
            ));
        }
        // Watched files: config management and log rotation write under /etc.
        if n % 8 == 0 {
            let path = FILES[(n as usize / 8) % FILES.len()];
            let h = g.header(
                kind::FILE_WRITE,
                size_of::<FileEvent>(),
                pid,
                start,
                ppid,
                pstart,
                comm,
            );
            g.out.push(encode::file(h, path, None, 0o644, 0));
            if n % 32 == 0 {
                let tmp = format!("{path}.tmp{num}");
                let h = g.header(
                    kind::FILE_RENAME,
                    size_of::<FileEvent>(),
                    pid,
                    start,
                    ppid,
                    pstart,
                    comm,
                );
                g.out.push(encode::file(h, &tmp, Some(path), 0, 0));
            }
        }
        let h = g.header(
            kind::EXIT,
            size_of::<tripline_common::ExitEvent>(),
            pid,
            start,
            ppid,
            pstart,
            comm,
        );
        g.out
            .push(encode::exit(h, if n % 17 == 0 { 256 } else { 0 }));
    }
    g.out
}
