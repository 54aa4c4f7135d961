//! TCP: connect (outbound, with its outcome), accept (inbound) and listen, attributed to the calling
//! process, with kernel-resolved addresses.
//!
//! * listen: `inet_sock_set_state` CLOSE→LISTEN runs in the caller's context; reported at once.
//! * connect: CLOSE→SYN_SENT (caller's context) parks the socket per thread; `sys_exit_connect` adds the
//!   result and the local port (read from the socket behind the fd). A non-blocking connect
//!   (EINPROGRESS) is parked per socket instead, and reported when SYN_SENT resolves to ESTABLISHED
//!   (result 0) or CLOSE (result `-sk_err`), still attributed to the process that called connect.
//! * accept: the socket behind the fd `accept`/`accept4` returned.
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use tripline_common::{
    counter, kind, NetEvent, AF_INET, AF_INET6, EINPROGRESS, IPPROTO_TCP, TCP_CLOSE,
    TCP_ESTABLISHED, TCP_LISTEN, TCP_SYN_SENT,
};

use crate::common::{
    count, count_lost, count_seen, current_task, fill_header, is_self, off, offsets_valid, read_at,
    read_ptr, submit_flags, syscall_programs, SysArgs, EVENTS,
};
use crate::path::stdio_flags;

/// `sock:inet_sock_set_state` fields, from the ABI table userspace checks against tracefs.
mod f {
    use tripline_common::tp::INET_SOCK_SET_STATE as T;
    pub const SKADDR: usize = T.field("skaddr");
    pub const OLDSTATE: usize = T.field("oldstate");
    pub const NEWSTATE: usize = T.field("newstate");
    pub const SPORT: usize = T.field("sport");
    pub const DPORT: usize = T.field("dport");
    pub const FAMILY: usize = T.field("family");
    pub const PROTOCOL: usize = T.field("protocol");
    pub const SADDR: usize = T.field("saddr");
    pub const DADDR: usize = T.field("daddr");
    pub const SADDR_V6: usize = T.field("saddr_v6");
    pub const DADDR_V6: usize = T.field("daddr_v6");
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Endpoints {
    family: u16,
    local_port: u16,
    peer_port: u16,
    _pad: u16,
    local_addr: [u8; 16],
    peer_addr: [u8; 16],
}

impl Endpoints {
    const NONE: Endpoints = Endpoints {
        family: 0,
        local_port: 0,
        peer_port: 0,
        _pad: 0,
        local_addr: [0; 16],
        peer_addr: [0; 16],
    };
}

/// A thread inside connect(2) (pid_tgid), with what SYN_SENT told about its socket (`skaddr` 0: nothing
/// yet). A SYN_SENT without an entry comes from elsewhere (sendto/sendmsg with MSG_FASTOPEN, io_uring
/// CONNECT): no syscall exit reports it, so the state machine does.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    ep: Endpoints,
    skaddr: u64,
}

#[map]
static CONNECTS: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU scratch for building a parked event off the 512-byte stack.
#[map]
static SCRATCH: PerCpuArray<NetEvent> = PerCpuArray::with_max_entries(1, 0);

/// Non-blocking connects waiting for the handshake's outcome, per socket address.
#[map]
static INFLIGHT: LruHashMap<u64, NetEvent> = LruHashMap::with_max_entries(16384, 0);

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_set_state(&ctx);
    0
}

fn try_set_state(ctx: &TracePointContext) -> Result<(), i32> {
    let (old, new, protocol): (i32, i32, u16) = unsafe {
        (
            ctx.read_at(f::OLDSTATE)?,
            ctx.read_at(f::NEWSTATE)?,
            ctx.read_at(f::PROTOCOL)?,
        )
    };
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    if old == TCP_SYN_SENT && (new == TCP_ESTABLISHED || new == TCP_CLOSE) {
        // Softirq or any context: the process is the one parked with the socket.
        let skaddr: u64 = unsafe { ctx.read_at(f::SKADDR)? };
        return resolve_inflight(ctx, skaddr, new);
    }
    if old != TCP_CLOSE || (new != TCP_SYN_SENT && new != TCP_LISTEN) || is_self() {
        return Ok(());
    }
    let ep = read_endpoints(ctx)?;
    if new == TCP_LISTEN {
        emit(kind::LISTEN, &ep, 0);
    } else {
        let skaddr: u64 = unsafe { ctx.read_at(f::SKADDR)? };
        match CONNECTS.get_ptr_mut(bpf_get_current_pid_tgid()) {
            Some(p) => unsafe {
                (*p).ep = ep;
                (*p).skaddr = skaddr;
            },
            // Not inside connect(2): parked now with the caller's identity and emitted when the
            // handshake resolves.
            None => park_inflight(&Pending { ep, skaddr }),
        }
    }
    Ok(())
}

fn read_endpoints(ctx: &TracePointContext) -> Result<Endpoints, i32> {
    let family: u16 = unsafe { ctx.read_at(f::FAMILY)? };
    let mut ep = Endpoints {
        family,
        local_port: unsafe { ctx.read_at(f::SPORT)? },
        peer_port: unsafe { ctx.read_at(f::DPORT)? },
        _pad: 0,
        local_addr: [0; 16],
        peer_addr: [0; 16],
    };
    unsafe {
        if family == AF_INET6 {
            ep.local_addr = ctx.read_at(f::SADDR_V6)?;
            ep.peer_addr = ctx.read_at(f::DADDR_V6)?;
        } else {
            let s: [u8; 4] = ctx.read_at(f::SADDR)?;
            let d: [u8; 4] = ctx.read_at(f::DADDR)?;
            ep.local_addr[..4].copy_from_slice(&s);
            ep.peer_addr[..4].copy_from_slice(&d);
        }
    }
    Ok(ep)
}

fn resolve_inflight(ctx: &TracePointContext, skaddr: u64, new: i32) -> Result<(), i32> {
    let Some(parked) = (unsafe { INFLIGHT.get(skaddr) }) else {
        return Ok(());
    };
    let parked = *parked;
    let _ = INFLIGHT.remove(skaddr);
    let result = outcome(skaddr, new);
    let sport: u16 = unsafe { ctx.read_at(f::SPORT).unwrap_or(0) };
    let Some(mut entry) = EVENTS.reserve::<NetEvent>(0) else {
        count_lost(kind::CONNECT);
        return Ok(());
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        *ev = parked;
        (*ev).result = result;
        if sport != 0 {
            (*ev).local_port = sport;
        }
    }
    entry.submit(submit_flags());
    Ok(())
}

/// At entry: marks the thread as inside connect(2), so its SYN_SENT is reported at the syscall's exit.
#[inline(always)]
fn connect_enter<C: SysArgs>(_ctx: &C) -> Result<(), i32> {
    let marker = Pending {
        ep: Endpoints::NONE,
        skaddr: 0,
    };
    if CONNECTS
        .insert(bpf_get_current_pid_tgid(), marker, 0)
        .is_err()
    {
        count(counter::PENDING_FULL);
    }
    Ok(())
}

syscall_programs!(connect, connect_enter, connect_exit);

#[inline(always)]
fn connect_exit<C: SysArgs>(ctx: &C) -> Result<(), i32> {
    let key = bpf_get_current_pid_tgid();
    let Some(p) = (unsafe { CONNECTS.get(key) }) else {
        return Ok(());
    };
    let mut p = *p;
    let _ = CONNECTS.remove(key);
    if p.skaddr == 0 {
        return Ok(()); // no TCP handshake started (not TCP, or refused before SYN_SENT)
    }
    let ret = ctx.ret();
    // The local port is assigned after SYN_SENT is set: read it back from the socket.
    if offsets_valid() {
        let sk = p.skaddr as *const u8;
        if let (Ok(port), Ok(addr)) = unsafe {
            (
                read_at::<u16>(sk, off!(sk_num)),
                read_at::<[u8; 4]>(sk, off!(sk_rcv_saddr)),
            )
        } {
            if port != 0 {
                p.ep.local_port = port;
                if p.ep.family == AF_INET {
                    p.ep.local_addr[..4].copy_from_slice(&addr);
                }
            }
        }
    }
    if ret == -EINPROGRESS {
        // On loopback the handshake often completes before connect returns.
        let state: u8 = if offsets_valid() {
            unsafe { read_at(p.skaddr as *const u8, off!(sk_state)).unwrap_or(0) }
        } else {
            0
        };
        let state = state as i32;
        if state == TCP_ESTABLISHED || state == TCP_CLOSE {
            emit(kind::CONNECT, &p.ep, outcome(p.skaddr, state));
        } else {
            park_inflight(&p);
        }
    } else {
        emit(kind::CONNECT, &p.ep, ret);
    }
    Ok(())
}

/// The result of a connect whose handshake ended in `state`: 0, or `-sk_err`.
#[inline(always)]
fn outcome(skaddr: u64, state: i32) -> i64 {
    if state == TCP_ESTABLISHED {
        return 0;
    }
    let err: i32 = if offsets_valid() {
        unsafe { read_at(skaddr as *const u8, off!(sk_err)).unwrap_or(0) }
    } else {
        0
    };
    if err > 0 {
        -(err as i64)
    } else {
        -111 // ECONNREFUSED: the usual cause when the error was already consumed
    }
}

/// Builds the event now (the caller's identity is only known here) and keeps it until the handshake
/// resolves. The event is counted as seen now.
fn park_inflight(p: &Pending) {
    count_seen(kind::CONNECT);
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    unsafe {
        fill_header(
            &raw mut (*ev).header,
            kind::CONNECT,
            core::mem::size_of::<NetEvent>(),
        );
        set_endpoints(&mut *ev, &p.ep, -EINPROGRESS);
        (*ev).header.flags |= stdio_flags();
        // By reference on purpose: by value would copy the event onto the 512-byte BPF stack.
        #[allow(clippy::needless_borrows_for_generic_args)]
        let inserted = INFLIGHT.insert(p.skaddr, &*ev, 0);
        if inserted.is_err() {
            count(counter::PENDING_FULL);
        }
    }
}

syscall_programs!(accept4, exit: try_accept);
syscall_programs!(accept, exit: try_accept);

#[inline(always)]
fn try_accept<C: SysArgs>(ctx: &C) -> Result<(), i32> {
    let ret = ctx.ret();
    if ret < 0 || !offsets_valid() || is_self() {
        return Ok(());
    }
    let sk = match unsafe { sock_of_fd(ret as u64) } {
        Ok(sk) => sk,
        Err(e) => {
            count(counter::READ_ERRORS);
            return Err(e);
        }
    };
    let ep = unsafe { read_sock(sk)? };
    if ep.family != AF_INET && ep.family != AF_INET6 {
        return Ok(());
    }
    let protocol: u16 = unsafe { read_at(sk, off!(sk_protocol))? };
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    emit(kind::ACCEPT, &ep, ret);
    Ok(())
}

/// `current->files->fdt->fd[fd]->private_data->sk`
#[inline(always)]
unsafe fn sock_of_fd(fd: u64) -> Result<*const u8, i32> {
    unsafe {
        let files = read_ptr(current_task(), off!(task_files))?;
        let fdt = read_ptr(files, off!(files_fdt))?;
        let max_fds: u32 = read_at(fdt, off!(fdtable_max_fds))?;
        if fd >= max_fds as u64 {
            return Err(-1);
        }
        let fds = read_ptr(fdt, off!(fdtable_fd))?;
        let file = read_ptr(fds, (fd as usize) * 8)?;
        let socket = read_ptr(file, off!(file_private_data))?;
        read_ptr(socket, off!(socket_sk))
    }
}

#[inline(always)]
unsafe fn read_sock(sk: *const u8) -> Result<Endpoints, i32> {
    let mut ep = Endpoints::NONE;
    unsafe {
        ep.family = read_at(sk, off!(sk_family))?;
        ep.local_port = read_at(sk, off!(sk_num))?;
        ep.peer_port = u16::from_be(read_at(sk, off!(sk_dport))?);
        if ep.family == AF_INET6 {
            ep.local_addr = read_at(sk, off!(sk_v6_rcv_saddr))?;
            ep.peer_addr = read_at(sk, off!(sk_v6_daddr))?;
        } else {
            let s: [u8; 4] = read_at(sk, off!(sk_rcv_saddr))?;
            let d: [u8; 4] = read_at(sk, off!(sk_daddr))?;
            ep.local_addr[..4].copy_from_slice(&s);
            ep.peer_addr[..4].copy_from_slice(&d);
        }
    }
    Ok(ep)
}

#[inline(always)]
fn set_endpoints(ev: &mut NetEvent, ep: &Endpoints, result: i64) {
    ev.family = ep.family;
    ev.protocol = IPPROTO_TCP;
    ev.local_port = ep.local_port;
    ev.peer_port = ep.peer_port;
    ev.local_addr = ep.local_addr;
    ev.peer_addr = ep.peer_addr;
    ev.result = result;
}

#[inline(always)]
fn emit(k: u16, ep: &Endpoints, result: i64) {
    count_seen(k);
    let Some(mut entry) = EVENTS.reserve::<NetEvent>(0) else {
        count_lost(k);
        return;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(&raw mut (*ev).header, k, core::mem::size_of::<NetEvent>());
        set_endpoints(&mut *ev, ep, result);
        if k == kind::CONNECT {
            (*ev).header.flags |= stdio_flags();
        }
    }
    entry.submit(submit_flags());
}
