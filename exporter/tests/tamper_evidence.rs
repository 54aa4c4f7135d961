//! Tamper evidence on the real kernel: a counter map value decremented with a raw bpf() map update
//! is a finding and a metric; kill -9 then restart is a finding naming the unmonitored gap; a clean
//! stop then restart is not.
mod common;

use std::time::{Duration, Instant};

use common::{i, s, Exporter};
use tripline_common::{counter, kind};

const WAIT: Duration = Duration::from_secs(30);

// bpf(2) commands.
const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_MAP_DELETE_ELEM: i64 = 3;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_map_info`.
#[repr(C)]
#[derive(Default)]
struct MapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
    _rest: [u64; 8],
}

fn bpf<T>(cmd: i64, attr: &mut T) -> i64 {
    // SAFETY: attr is a valid, initialised bpf_attr prefix of the given size.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    }
}

/// The fd of the exporter's map called `name` (at most 15 bytes: the kernel's limit), found through
/// its open map ids (/proc/PID/fdinfo).
fn map_of(pid: u32, name: &str) -> i32 {
    let mut want = name.as_bytes().to_vec();
    want.push(0);
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(text) = std::fs::read_to_string(e.unwrap().path()) else {
            continue;
        };
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("map_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let mut a = GetIdAttr {
            id,
            ..Default::default()
        };
        let fd = bpf(BPF_MAP_GET_FD_BY_ID, &mut a);
        if fd < 0 {
            continue;
        }
        let mut info = MapInfo::default();
        let mut ia = InfoAttr {
            bpf_fd: fd as u32,
            info_len: std::mem::size_of::<MapInfo>() as u32,
            info: &mut info as *mut MapInfo as u64,
        };
        if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut ia) == 0 && info.name.starts_with(&want) {
            return fd as i32;
        }
        // SAFETY: our own fd.
        unsafe { libc::close(fd as i32) };
    }
    panic!("tripline (pid {pid}) holds no {name} map");
}

fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn a_rewritten_kernel_counter_is_a_tamper_finding_and_a_metric() {
    let ex = Exporter::start(&["events", "--tamper.check-interval", "1s"]);
    for _ in 0..5 {
        common::run_ok("/bin/true", &[]);
    }
    // Let tripline read the counters (a scrape syncs them).
    let before = ex.sample("tripline_events_total{kind=\"exec\"}");
    assert!(before >= 5.0, "{before}");

    let fd = map_of(ex.child.id(), "COUNTERS");
    let ncpu = possible_cpus();
    let key: u32 = counter::SEEN + u32::from(kind::EXEC);
    let lookup = || {
        let mut values = vec![0u64; ncpu];
        let mut a = MapElemAttr {
            map_fd: fd as u32,
            key: &key as *const u32 as u64,
            value: values.as_mut_ptr() as u64,
            ..Default::default()
        };
        assert_eq!(bpf(BPF_MAP_LOOKUP_ELEM, &mut a), 0, "lookup");
        values
    };
    let values = lookup();
    assert!(values.iter().sum::<u64>() >= 5);
    // The attacker's move: lower the exec count on the busiest CPU (e.g. to hide what ran). The probe
    // increments the slot without a lock, so an exec on that CPU at the same instant can overwrite
    // the write: check it stuck, as an attacker would.
    let biggest = (0..ncpu).max_by_key(|c| values[*c]).unwrap();
    let was = values[biggest];
    for attempt in 0.. {
        let mut values = lookup();
        values[biggest] = 0;
        let mut a = MapElemAttr {
            map_fd: fd as u32,
            key: &key as *const u32 as u64,
            value: values.as_ptr() as u64,
            flags: 0, // BPF_ANY
            ..Default::default()
        };
        assert_eq!(bpf(BPF_MAP_UPDATE_ELEM, &mut a), 0, "update");
        if lookup()[biggest] < was {
            break;
        }
        assert!(attempt < 20, "the counter write never stuck");
    }
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };

    let f = ex.wait_events("tamper finding", WAIT, |e| {
        s(e, "security_rule.name") == "tamper_counter_decreased"
    });
    assert_eq!(s(&f[0], "event.name"), "tripline.tamper.detected");
    assert_eq!(s(&f[0], "tripline.tamper.reason"), "counter_decreased");
    let detail = s(&f[0], "tripline.tamper.detail");
    assert!(
        detail.contains(&format!("seen[exec] on CPU {biggest} went down")),
        "{detail}"
    );
    assert_eq!(i(&f[0], "process.pid"), i64::from(ex.child.id()));
    assert!(ex.sample("tripline_tamper_detected_total{reason=\"counter_decreased\"}") >= 1.0);
    // The exported counter never goes down.
    assert!(ex.sample("tripline_events_total{kind=\"exec\"}") >= before);
    // Programs, links and maps were verified and are intact.
    assert!(ex.sample("tripline_tamper_check_timestamp_seconds") > 0.0);
    for r in [
        "program_missing",
        "program_changed",
        "link_missing",
        "map_missing",
    ] {
        assert_eq!(
            ex.sample(&format!("tripline_tamper_detected_total{{reason=\"{r}\"}}")),
            0.0,
            "{r}"
        );
    }
    assert!(ex.sample("tripline_last_event_timestamp_seconds") > 1.7e9);
    assert!(ex.sample("tripline_heartbeat_timestamp_seconds") > 1.7e9);
}

/// Emptying a slot of the raw syscall dispatcher blinds that syscall's probe as surely as detaching a
/// link: the integrity check reports it.
#[test]
fn an_emptied_dispatcher_slot_is_a_tamper_finding() {
    let ex = Exporter::start(&["events", "--tamper.check-interval", "1s"]);
    let fd = map_of(ex.child.id(), "SYS_ENTER_PROGS");
    let nr = tripline_common::x86_64_syscall_nr("openat").unwrap();
    let mut a = MapElemAttr {
        map_fd: fd as u32,
        key: &nr as *const u32 as u64,
        ..Default::default()
    };
    assert_eq!(bpf(BPF_MAP_DELETE_ELEM, &mut a), 0, "delete slot {nr}");
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    let f = ex.wait_events("tamper finding", WAIT, |e| {
        s(e, "tripline.tamper.reason") == "link_missing"
    });
    let detail = s(&f[0], "tripline.tamper.detail");
    assert!(
        detail.contains("raw_enter_openat") && detail.contains(&format!("slot {nr}")),
        "{detail}"
    );
    assert!(ex.sample("tripline_tamper_detected_total{reason=\"link_missing\"}") >= 1.0);
}

#[test]
fn kill_9_then_restart_reports_the_gap_and_a_clean_stop_does_not() {
    let dir = std::env::temp_dir().join(format!("tripline-tamper-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let args = [
        "events",
        "--state.directory",
        d,
        "--tamper.check-interval",
        "1s",
    ];

    let first = Exporter::start(&args);
    let first_pid = first.child.id();
    std::thread::sleep(Duration::from_millis(1500)); // at least one heartbeat
    drop(first); // SIGKILL: no clean shutdown
    std::thread::sleep(Duration::from_secs(3));

    let second = Exporter::start(&args);
    let f = second.wait_events("unclean stop finding", WAIT, |e| {
        s(e, "security_rule.name") == "tamper_unclean_stop"
    });
    let gap = i(&f[0], "tripline.tamper.gap_seconds");
    assert!((2..60).contains(&gap), "gap {gap}");
    let detail = s(&f[0], "tripline.tamper.detail");
    assert!(detail.contains(&format!("pid {first_pid}")), "{detail}");
    assert!(second.sample("tripline_tamper_detected_total{reason=\"unclean_stop\"}") >= 1.0);
    assert_eq!(second.stop(), 0);

    // A clean stop (SIGTERM) marks the state: the next start reports nothing.
    let third = Exporter::start(&args);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(third
        .events_where(|e| s(e, "event.name") == "tripline.tamper.detected")
        .is_empty());
    assert_eq!(
        third.sample("tripline_tamper_detected_total{reason=\"unclean_stop\"}"),
        0.0
    );
    assert_eq!(third.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
