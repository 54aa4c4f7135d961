//! A fixed kernel workload for overhead benchmarks (tests/bench/kernel_overhead.sh):
//! `workload exec N` runs /bin/true N times; `workload tcp N` makes N loopback connect+accept pairs.
//! Prints the elapsed seconds.
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
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
        other => {
            eprintln!("unknown workload {other}: use exec or tcp");
            std::process::exit(2);
        }
    }
    println!("{:.3}", t.elapsed().as_secs_f64());
}
