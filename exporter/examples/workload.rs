//! A fixed kernel workload for overhead benchmarks (tests/bench/kernel_overhead.sh):
//! `workload exec N` runs /bin/true N times; `workload tcp N` makes N loopback connect+accept pairs.
//! `workload file N` creates/truncates, writes and closes $WORKLOAD_FILE N times.
//! `workload syscall N` makes N getppid calls: a syscall no probe hooks (the raw syscall dispatcher's
//! cost on everything else the host does).
//! Prints the elapsed seconds.
//! Storms (tests/bench/storm.sh): `workload tcp-storm RATE SECONDS THREADS` paces loopback connect+accept
//! pairs at RATE pairs/s over THREADS threads; `workload exec-storm RATE SECONDS THREADS` paces execs of
//! /bin/true; `workload file-storm RATE SECONDS THREADS` paces open(O_WRONLY|O_CREAT)+write+close of
//! `$WORKLOAD_FILE.<thread>` (one `file_write` event each when the path is watched). All print
//! `made=<operations done> seconds=<elapsed>`.
//! `workload count` reads JSON lines on stdin (the storm's output, from a file or a FIFO) and prints, at
//! the end of its input, one `<event.name> <process.pid> <process.parent_pid> <lines>` row per distinct
//! triple: a compiled reader, so that counting 100k lines/s takes little of the CPUs being measured.
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("count") {
        count_lines();
        return;
    }
    let (what, n) = match (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) {
        (Some(w), Some(n)) => (w.as_str(), n),
        _ => {
            eprintln!("usage: workload exec|tcp N");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    match what {
        "exec" => {
            for _ in 0..n {
                Command::new("/bin/true").status().expect("run /bin/true");
            }
        }
        "tcp" => {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let addr = l.local_addr().unwrap();
            for _ in 0..n {
                let c = TcpStream::connect(addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                drop(c);
                drop(s);
            }
        }
        "syscall" => {
            for _ in 0..n {
                // SAFETY: getppid has no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::getppid() });
            }
        }
        "file" => {
            // open(O_CREAT|O_TRUNC)+write+close of the path in WORKLOAD_FILE (default /tmp/...).
            use std::io::Write;
            let path = std::env::var("WORKLOAD_FILE")
                .unwrap_or_else(|_| "/tmp/tripline-workload.tmp".into());
            for _ in 0..n {
                let mut f = std::fs::File::create(&path).expect("create the workload file");
                f.write_all(b"x").expect("write");
            }
            let _ = std::fs::remove_file(&path);
        }
        "tcp-storm" | "exec-storm" | "file-storm" => {
            let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30.0);
            let threads: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2).max(1);
            let op = match what {
                "tcp-storm" => Op::Tcp,
                "exec-storm" => Op::Exec,
                _ => Op::File,
            };
            let made = storm(op, n, secs, threads);
            println!("made={made} seconds={:.3}", t.elapsed().as_secs_f64());
            return;
        }
        other => {
            eprintln!("unknown workload {other}: use exec or tcp");
            std::process::exit(2);
        }
    }
    println!("{:.3}", t.elapsed().as_secs_f64());
}

#[derive(Clone, Copy)]
enum Op {
    Tcp,
    Exec,
    File,
}

/// `rate` operations per second for `secs`, spread over `threads`, paced in 1 ms slices (a thread that
/// falls behind catches up without sleeping). Returns the operations done.
fn storm(op: Op, rate: u64, secs: f64, threads: u64) -> u64 {
    use std::io::Write;
    use std::time::Duration;
    let per_thread = rate as f64 / threads as f64;
    let file =
        std::env::var("WORKLOAD_FILE").unwrap_or_else(|_| "/tmp/tripline-workload.tmp".into());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let path = format!("{file}.{t}");
            std::thread::spawn(move || {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
                let addr = l.local_addr().unwrap();
                let start = Instant::now();
                let mut done = 0u64;
                loop {
                    let elapsed = start.elapsed().as_secs_f64();
                    if elapsed >= secs {
                        break;
                    }
                    let due = (elapsed * per_thread) as u64;
                    if done >= due {
                        std::thread::sleep(Duration::from_micros(500));
                        continue;
                    }
                    for _ in 0..(due - done).min(64) {
                        match op {
                            Op::Tcp => {
                                let c = TcpStream::connect(addr).expect("connect");
                                let (s, _) = l.accept().expect("accept");
                                drop(c);
                                drop(s);
                            }
                            Op::Exec => {
                                Command::new("/bin/true").status().expect("run /bin/true");
                            }
                            Op::File => {
                                // O_WRONLY|O_CREAT without O_TRUNC: the byte overwrites itself, so
                                // tmpfs frees and allocates no page per operation (with O_TRUNC
                                // that was most of the operation's cost, not tripline's).
                                let mut f = std::fs::OpenOptions::new()
                                    .write(true)
                                    .create(true)
                                    .truncate(false)
                                    .open(&path)
                                    .expect("open for writing");
                                f.write_all(b"x").expect("write");
                            }
                        }
                        done += 1;
                    }
                }
                let _ = std::fs::remove_file(&path);
                done
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
}

/// `workload count`: lines of stdin by (event name, pid, parent pid). Lines are scanned for the three
/// fields as tripline writes them (`"event.name":"…"`, `"process.pid":N`, `"process.parent_pid":N`);
/// a line without an event name is counted under `-`. Stdin, when it is a pipe, is enlarged to 1 MiB
/// (the kernel's default `pipe-max-size`): a writer that gathers 256 KiB per write(2), as tripline's
/// JSON-lines thread does, then waits on the reader's turn on the CPU four times less often. A line
/// costs no allocation once its (pid, parent pid, name) was seen.
fn count_lines() {
    use std::collections::HashMap;
    use std::io::{BufRead, Write};
    fn after<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        line.windows(key.len())
            .position(|w| w == key)
            .map(|i| &line[i + key.len()..])
    }
    fn number(rest: Option<&[u8]>) -> u64 {
        rest.map_or(0, |r| {
            r.iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0, |n, b| n * 10 + u64::from(b - b'0'))
        })
    }
    // SAFETY: fcntl on fd 0 with an integer argument; fails harmlessly when stdin is not a pipe.
    unsafe { libc::fcntl(0, libc::F_SETPIPE_SZ, 1 << 20) };
    /// The event names seen for one (pid, parent pid), with their counts.
    type Names = Vec<(Vec<u8>, u64)>;
    let mut counts: HashMap<(u64, u64), Names> = HashMap::new();
    let mut stdin = std::io::BufReader::with_capacity(64 << 10, std::io::stdin().lock());
    let mut line = Vec::with_capacity(4096);
    while stdin.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let name = after(&line, b"\"event.name\":\"")
            .and_then(|r| r.iter().position(|&b| b == b'"').map(|e| &r[..e]))
            .unwrap_or(b"-");
        let pid = number(after(&line, b"\"process.pid\":"));
        let ppid = number(after(&line, b"\"process.parent_pid\":"));
        let names = counts.entry((pid, ppid)).or_default();
        match names.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => names.push((name.to_vec(), 1)),
        }
        line.clear();
    }
    let mut out = std::io::stdout().lock();
    for ((pid, ppid), names) in counts {
        for (name, n) in names {
            let _ = writeln!(out, "{} {pid} {ppid} {n}", String::from_utf8_lossy(&name));
        }
    }
}
