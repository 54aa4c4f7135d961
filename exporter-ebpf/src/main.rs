//! tripline kernel probes. One module per hook family; every program is a thin `fn x(ctx) -> u32`
//! that calls `try_x` and counts failures instead of losing them.
#![no_std]
#![feature(macro_metavar_expr_concat)]
#![no_main]

mod common;
mod file;
mod io_uring;
mod net;
mod path;
mod privilege;
mod process;
mod tamper;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
