//! Memory from the program's `ikcp_allocator` hooks.
//!
//! The control block and every segment payload are allocated through the
//! hooks installed at the time of allocation, and each allocation remembers
//! how to free itself, so nothing is ever freed through a hook that did not
//! allocate it — even if the program changes hooks while objects live.
//! The engine's index rings (small arrays of segment descriptors) use Rust's
//! global allocator: Rust's collections cannot take a custom allocator on
//! stable Rust.

use std::os::raw::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine::{Payload, HEADER_LEN};

/// `void *(*)(size_t)`
pub type MallocHook = unsafe extern "C" fn(usize) -> *mut c_void;
/// `void (*)(void *)`
pub type FreeHook = unsafe extern "C" fn(*mut c_void);

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

// Function pointers stored as integers (0 = not installed).
static MALLOC_HOOK: AtomicUsize = AtomicUsize::new(0);
static FREE_HOOK: AtomicUsize = AtomicUsize::new(0);

pub fn set_hooks(new_malloc: Option<MallocHook>, new_free: Option<FreeHook>) {
    MALLOC_HOOK.store(new_malloc.map_or(0, |f| f as usize), Ordering::SeqCst);
    FREE_HOOK.store(new_free.map_or(0, |f| f as usize), Ordering::SeqCst);
}

/// How to give one allocation back.
#[derive(Clone, Copy, Debug)]
pub enum Release {
    /// C `free`.
    Libc,
    /// The free hook installed together with the malloc hook that allocated it.
    Hook(FreeHook),
}

/// Allocates `size` bytes the way upstream's `ikcp_malloc` would.
pub fn allocate(size: usize) -> Option<(NonNull<u8>, Release)> {
    let malloc_hook = MALLOC_HOOK.load(Ordering::SeqCst);
    let (ptr, release) = if malloc_hook != 0 {
        // SAFETY: the value was stored from a valid `MallocHook` in `set_hooks`.
        let hook: MallocHook = unsafe { std::mem::transmute::<usize, MallocHook>(malloc_hook) };
        let free_hook = FREE_HOOK.load(Ordering::SeqCst);
        let release = if free_hook != 0 {
            // SAFETY: stored from a valid `FreeHook` in `set_hooks`.
            Release::Hook(unsafe { std::mem::transmute::<usize, FreeHook>(free_hook) })
        } else {
            Release::Libc
        };
        // SAFETY: calling the program's allocator with a size, as upstream does.
        (unsafe { hook(size) }, release)
    } else {
        // SAFETY: plain C malloc.
        (unsafe { malloc(size) }, Release::Libc)
    };
    NonNull::new(ptr.cast::<u8>()).map(|p| (p, release))
}

/// Frees memory obtained from [`allocate`].
///
/// # Safety
/// `ptr` must come from `allocate` together with `release`, and not be used again.
pub unsafe fn deallocate(ptr: NonNull<u8>, release: Release) {
    match release {
        // SAFETY: per the contract, `ptr` came from `malloc`.
        Release::Libc => unsafe { free(ptr.as_ptr().cast()) },
        // SAFETY: per the contract, `ptr` came from the malloc hook paired with `hook`.
        Release::Hook(hook) => unsafe { hook(ptr.as_ptr().cast()) },
    }
}

/// A segment payload in memory from the allocator hooks.
pub struct HookBuf {
    ptr: NonNull<u8>,
    // u32: a segment never exceeds the MSS (a u32); one slot of the send
    // ring is 8 bytes smaller for it.
    len: u32,
    capacity: u32,
    release: Release,
}

/// Whether the program has installed a malloc hook.
fn hooks_installed() -> bool {
    MALLOC_HOOK.load(Ordering::Relaxed) != 0
}

/// Copies `parts` back to back into `dst`.
///
/// # Safety
/// `dst` must have room for the parts' total length and not overlap them.
unsafe fn copy_parts(dst: *mut u8, parts: &[&[u8]]) {
    let mut at = 0;
    for part in parts {
        // SAFETY: per the contract, `dst + at .. + part.len()` is in bounds.
        unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), dst.add(at), part.len()) };
        at += part.len();
    }
}

impl HookBuf {
    /// Start of the payload, after the header room.
    fn payload_ptr(&self) -> *mut u8 {
        // SAFETY: every allocation holds `HEADER_LEN + capacity` bytes.
        unsafe { self.ptr.as_ptr().add(HEADER_LEN) }
    }
}

impl Payload for HookBuf {
    type Tail = super::control::CbTail;

    fn concat(parts: &[&[u8]]) -> Option<Self> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len32 = u32::try_from(len).ok()?;
        // Upstream allocates every segment, even an empty one, so a refusing
        // allocator fails an empty send too (the header room guarantees a
        // non-zero size, whatever malloc(0) would return).
        let (ptr, release) = allocate(HEADER_LEN + len)?;
        // SAFETY: the allocation has `HEADER_LEN + len` writable bytes;
        // the header room starts zeroed so every byte is initialised; fresh
        // memory cannot overlap the sources.
        unsafe {
            std::ptr::write_bytes(ptr.as_ptr(), 0, HEADER_LEN);
            copy_parts(ptr.as_ptr().add(HEADER_LEN), parts);
        }
        Some(HookBuf {
            ptr,
            len: len32,
            capacity: len32,
            release,
        })
    }

    fn refill(&mut self, parts: &[&[u8]]) -> bool {
        // While hooks are installed every segment is allocated through them,
        // as upstream does (a refusing hook must make sends fail).
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if hooks_installed() || len > self.capacity as usize {
            return false;
        }
        // SAFETY: the payload area has `capacity >= len` bytes; the parts
        // are shared borrows, so none of them is this (exclusively borrowed)
        // buffer.
        unsafe { copy_parts(self.payload_ptr(), parts) };
        self.len = len as u32;
        true
    }

    fn header_room(&mut self) -> Option<&mut [u8; HEADER_LEN]> {
        // SAFETY: the first `HEADER_LEN` bytes are the initialised header
        // room, owned by `self` and exclusively borrowed here.
        Some(unsafe { &mut *self.ptr.as_ptr().cast::<[u8; HEADER_LEN]>() })
    }

    fn framed(&self) -> &[u8] {
        // SAFETY: header room and `len` payload bytes are initialised and
        // owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), HEADER_LEN + self.len as usize) }
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the payload area holds `len` initialised bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len as usize) }
    }
}

impl Drop for HookBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`release` came from `allocate` and are dropped once.
        unsafe { deallocate(self.ptr, self.release) }
    }
}

impl std::fmt::Debug for HookBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HookBuf({} bytes)", self.len)
    }
}
