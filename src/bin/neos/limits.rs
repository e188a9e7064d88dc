//! What this machine lets the command use, so that a workspace too large for it is refused
//! with a message before the work starts, instead of the process aborting on an allocation
//! failure halfway through.
//!
//! The memory available is the smallest of the free memory (`MemAvailable` in /proc/meminfo)
//! and what the address-space and data-size limits (`ulimit -v`, `ulimit -d`, read from
//! /proc/self/limits) leave beside what the process already maps. Where /proc cannot be read
//! (other systems), nothing is known and nothing is refused; the allocator below still turns a
//! failed allocation into a one-line error.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Bytes this process may still allocate, if the system says.
pub fn available_bytes() -> Option<u64> {
    let mut limits = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        limits.extend(kib_field(&text, "MemAvailable:").map(|k| k * 1024));
    }
    let mapped = std::fs::read_to_string("/proc/self/status").ok().and_then(|t| kib_field(&t, "VmSize:")).unwrap_or(0);
    if let Ok(text) = std::fs::read_to_string("/proc/self/limits") {
        for name in ["Max address space", "Max data size"] {
            if let Some(limit) = soft_limit(&text, name) {
                limits.push(limit.saturating_sub(mapped * 1024));
            }
        }
    }
    limits.into_iter().min()
}

/// A `Name:   123 kB` line's number.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The soft limit of a /proc/self/limits row, in bytes; `None` when unlimited.
fn soft_limit(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Refuses work whose estimated memory exceeds what is available, naming both.
pub fn check_memory(what: &str, needed: u64) -> Result<(), String> {
    match available_bytes() {
        Some(available) if needed > available => Err(format!(
            "{what}: expected to fit in the {} available, found it needs about {}",
            human(available),
            human(needed)
        )),
        _ => Ok(()),
    }
}

fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// The system allocator, except that a failed allocation ends the process with one line on
/// stderr and exit code 1, as every other error of this command does, rather than Rust's
/// abort with its core dump. Nothing is allocated on that path: the message is written
/// straight to the unbuffered stderr.
pub struct ReportingAllocator;

// SAFETY: every method forwards to `System` unchanged; only a null result is acted on, and the
// process then exits without returning the null pointer to anyone.
unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` and `layout` come from `System`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}

fn out_of_memory(size: usize) -> ! {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"error: out of memory: could not allocate ");
    let _ = err.write_all(&digits[i..]);
    let _ = err.write_all(b" bytes; the workspace is too large for the memory this process may use\n");
    std::process::exit(1)
}
