//! The buffer an output callback receives must stay intact for the whole
//! callback, whatever the callback does to the object meanwhile.
//!
//! Our library hands a data segment that fills a datagram alone straight
//! from the segment's own buffer (no copy into an assembly buffer). This test
//! makes the callback acknowledge that very segment (so the object would
//! normally recycle its buffer), send new data (which wants a buffer) and,
//! for ours, flush again from inside the callback; the bytes it reads at the
//! end must equal those it read at the start. Everything the two
//! implementations put on the wire and return is compared as well.

use std::ffi::{c_char, c_int, c_long, c_void};

use ffi_tests::api::Api;
use ffi_tests::wire::CMD_ACK;
use kcp_io::sys::IKCPCB;

/// What the callback saw and did.
struct Probe {
    api: Api,
    datagrams: Vec<Vec<u8>>,
    /// Datagrams whose bytes changed while the callback ran.
    changed: usize,
    /// Return values of the calls made from inside the callback.
    nested: Vec<c_int>,
    /// Whether to also flush from inside the callback (not for the
    /// reference: upstream's nested flush overwrites its own output buffer).
    nested_flush: bool,
    /// Only the first few callbacks re-enter, so the transfer can finish.
    reentries_left: u32,
}

fn ack_for(datagram: &[u8]) -> Option<Vec<u8>> {
    // conv(4) cmd(1) frg(1) wnd(2) ts(4) sn(4) una(4) len(4)
    if datagram.len() < 24 || datagram[4] != 81 {
        return None;
    }
    let mut ack = datagram[..24].to_vec();
    ack[4] = CMD_ACK;
    ack[6..8].copy_from_slice(&128u16.to_le_bytes());
    let sn = u32::from_le_bytes(datagram[12..16].try_into().unwrap());
    // una = sn + 1 acknowledges everything up to this segment.
    ack[16..20].copy_from_slice(&sn.wrapping_add(1).to_le_bytes());
    ack[20..24].copy_from_slice(&0u32.to_le_bytes());
    Some(ack)
}

unsafe extern "C" fn output(
    buf: *const c_char,
    len: c_int,
    kcp: *mut IKCPCB,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the Probe this object was created with; `buf` holds
    // `len` bytes for the duration of the callback (the property under test).
    unsafe {
        let probe = &mut *(user as *mut Probe);
        let read = || std::slice::from_raw_parts(buf as *const u8, len as usize).to_vec();
        let before = read();
        if probe.reentries_left > 0 {
            if let Some(ack) = ack_for(&before) {
                probe.reentries_left -= 1;
                let api = probe.api;
                let r = (api.input)(kcp, ack.as_ptr().cast(), ack.len() as c_long);
                probe.nested.push(r);
                let fresh = vec![0xa5u8; 1000];
                let r = (api.send)(kcp, fresh.as_ptr().cast(), fresh.len() as c_int);
                probe.nested.push(r);
                if probe.nested_flush {
                    (api.flush)(kcp);
                }
            }
        }
        // `probe` may have been used by nested callbacks: re-borrow it.
        let probe = &mut *(user as *mut Probe);
        let after = read();
        if after != before {
            probe.changed += 1;
        }
        probe.datagrams.push(before);
        0
    }
}

/// Runs a short transfer of full-size messages, one per datagram.
fn run(api: Api, nested_flush: bool) -> Box<Probe> {
    let mut probe = Box::new(Probe {
        api,
        datagrams: Vec::new(),
        changed: 0,
        nested: Vec::new(),
        nested_flush,
        reentries_left: 40,
    });
    // SAFETY: a fresh object whose `user` (the boxed probe) outlives it.
    unsafe {
        let kcp = (api.create)(7, (&mut *probe as *mut Probe).cast());
        (api.setoutput)(kcp, Some(output));
        (api.nodelay)(kcp, 1, 10, 2, 1);
        (api.wndsize)(kcp, 256, 256);
        let message: Vec<u8> = (0..1376u32).map(|i| (i * 7) as u8).collect();
        for round in 0..20u32 {
            for _ in 0..5 {
                (api.send)(kcp, message.as_ptr().cast(), message.len() as c_int);
            }
            (api.update)(kcp, round * 10);
        }
        (api.release)(kcp);
    }
    probe
}

#[test]
fn output_buffer_survives_acks_and_sends_from_inside_the_callback() {
    let [reference, ours] = Api::both();
    let r = run(reference, false);
    let o = run(ours, false);
    assert_eq!(
        r.changed, 0,
        "reference: output buffer changed under the callback"
    );
    assert_eq!(
        o.changed, 0,
        "ours: output buffer changed under the callback"
    );
    assert_eq!(
        o.nested, r.nested,
        "return values of the nested calls differ"
    );
    assert_eq!(
        o.datagrams.len(),
        r.datagrams.len(),
        "datagram counts differ"
    );
    for (i, (a, b)) in o.datagrams.iter().zip(&r.datagrams).enumerate() {
        assert_eq!(a, b, "datagram {i} differs");
    }
    assert!(r.nested.len() >= 40, "the callback re-entered too rarely");
}

#[test]
fn output_buffer_survives_a_nested_flush() {
    let o = run(Api::ours(), true);
    assert_eq!(o.changed, 0, "output buffer changed under a nested flush");
    assert!(
        o.datagrams.len() > 100,
        "too little traffic: {}",
        o.datagrams.len()
    );
}
