//! Two engines connected in memory under a virtual clock, for the root
//! benchmarks (`cargo bench`): only our engine, no C library, no sockets.
//! Included by each `engine_*` bench with `#[path]`.

use kcp::Kcp;

/// A lossless link with a fixed one-way delay, in 10 ms ticks.
pub struct Pair {
    pub a: Kcp,
    pub b: Kcp,
    now: u32,
    to_b: Vec<Vec<u8>>,
    to_a: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl Pair {
    /// Fast mode (nodelay, 10 ms interval, fast resend 2, no congestion
    /// window), windows of `wnd` segments.
    pub fn fast(wnd: u32) -> Pair {
        let mk = || {
            let mut k = Kcp::new(0x11223344);
            k.set_nodelay(1, 10, 2, true);
            k.set_window_size(wnd, wnd);
            k
        };
        Pair {
            a: mk(),
            b: mk(),
            now: 0,
            to_b: Vec::new(),
            to_a: Vec::new(),
            buf: vec![0; 1 << 20],
        }
    }

    /// One 10 ms tick: both engines run their clock, datagrams cross,
    /// `b` delivers what it can; returns the bytes `b` delivered.
    pub fn tick(&mut self) -> usize {
        self.now += 10;
        let (to_b, to_a) = (&mut self.to_b, &mut self.to_a);
        self.a
            .update(self.now, &mut |d: &[u8]| to_b.push(d.to_vec()));
        self.b
            .update(self.now, &mut |d: &[u8]| to_a.push(d.to_vec()));
        for d in self.to_b.drain(..) {
            self.b.input(&d).expect("well-formed datagram");
        }
        for d in self.to_a.drain(..) {
            self.a.input(&d).expect("well-formed datagram");
        }
        let mut got = 0;
        while let Ok(n) = self.b.recv(&mut self.buf) {
            got += n;
        }
        got
    }

    /// Sends `messages` from `a` to `b` (as fast as the send window allows)
    /// and returns once `b` received all their bytes.
    pub fn transfer(&mut self, messages: &[&[u8]]) -> usize {
        let total: usize = messages.iter().map(|m| m.len()).sum();
        let mut next = 0;
        let mut got = 0;
        let limit = 2 * self.a.window_size().0 as usize;
        while got < total {
            while next < messages.len() && self.a.wait_snd() < limit {
                self.a.send(messages[next]).expect("message fits");
                next += 1;
            }
            got += self.tick();
            assert!(self.now < 100_000_000, "transfer stalled");
        }
        got
    }
}
