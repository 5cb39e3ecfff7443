//! Bytes allocated per idle connection and per in-flight segment: ours with a
//! counting global allocator, the reference with counting `ikcp_allocator`
//! hooks. Prints `memory <what> <implementation> <bytes>` lines.

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::raw::c_void;
use std::sync::atomic::{AtomicIsize, Ordering};

use ikcp_bench::{CApi, CEndpoint, Endpoint, Mode, Ours};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same layout contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// The reference's hooks get no size on free, so each block carries its size
// in a 16-byte prefix.
static C_LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe extern "C" fn c_malloc(size: usize) -> *mut c_void {
    // SAFETY: a plain allocation with room for the prefix.
    unsafe {
        let block = libc_malloc(size + 16) as *mut usize;
        if block.is_null() {
            return block.cast();
        }
        *block = size;
        C_LIVE.fetch_add(size as isize, Ordering::SeqCst);
        block.cast::<u8>().add(16).cast()
    }
}

unsafe extern "C" fn c_free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from `c_malloc`, 16 bytes past the block start.
    unsafe {
        let block = ptr.cast::<u8>().sub(16).cast::<usize>();
        C_LIVE.fetch_sub(*block as isize, Ordering::SeqCst);
        libc_free(block.cast());
    }
}

extern "C" {
    #[link_name = "malloc"]
    fn libc_malloc(size: usize) -> *mut c_void;
    #[link_name = "free"]
    fn libc_free(ptr: *mut c_void);
}

const IN_FLIGHT: usize = 1000;

/// Live bytes of one idle endpoint, then per in-flight 1 KB segment. The
/// endpoint is boxed, as a program holding many connections would hold it.
fn measure<E: Endpoint>(live: &AtomicIsize, make: impl Fn() -> E) -> (isize, isize) {
    let make = || Box::new(make());
    let before = live.load(Ordering::SeqCst);
    let mut idle = make();
    idle.update(0);
    idle.update(100);
    idle.wire().drain(|_| {});
    let idle_bytes = live.load(Ordering::SeqCst) - before;
    drop(idle);

    let mut busy = make();
    busy.update(0);
    let message = [1u8; 1024];
    for _ in 0..IN_FLIGHT {
        busy.send(&message);
    }
    busy.update(10);
    busy.wire().drain(|_| {});
    let busy_bytes = live.load(Ordering::SeqCst) - before;
    (idle_bytes, (busy_bytes - idle_bytes) / IN_FLIGHT as isize)
}

fn main() {
    // `cargo bench` passes harness flags; this measurement takes none.
    let mode = Mode::fast(2048);
    let (ours_idle, ours_seg) = measure(&LIVE, || Ours::new(1, mode));
    // Ours counts the whole boxed endpoint, including the harness's empty
    // datagram collector; the reference counts what ikcp.c allocates.
    // SAFETY: installing allocator hooks before any reference object exists.
    unsafe { kcp_io::sys::ikcp_allocator(c_malloc, c_free) };
    let (ref_idle, ref_seg) = measure(&C_LIVE, || CEndpoint::new(CApi::reference(), 1, mode));
    println!("memory idle_connection ours {ours_idle}");
    println!("memory idle_connection reference {ref_idle}");
    println!("memory per_inflight_segment ours {ours_seg}");
    println!("memory per_inflight_segment reference {ref_seg}");
}
