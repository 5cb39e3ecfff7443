//! Zero-window probing: while the peer advertises no room, ask it for its
//! window with a back-off; answer its questions with our window.

use super::codec::{Command, SegmentHeader};
use super::constants::*;
use super::controller::Flavour;
use super::host::Host;
use super::kcp::{Kcp, OVERHEAD};
use super::payload::Payload;

impl<P: Payload> Kcp<P> {
    /// Arms, backs off or disarms the window-probe timer; flags a window
    /// question when it fires.
    pub(super) fn schedule_probe(&mut self) {
        let probe_init = match self.flavour {
            Flavour::V1 => PROBE_INIT,
            Flavour::V2 => PROBE_INIT_V2,
        };
        if self.rmt_wnd == 0 {
            if self.probe_wait == 0 {
                self.probe_wait = probe_init;
                self.ts_probe = self.current.wrapping_add(self.probe_wait);
            } else if diff(self.current, self.ts_probe) >= 0 {
                self.probe_wait = self.probe_wait.max(probe_init);
                self.probe_wait = self.probe_wait.wrapping_add(self.probe_wait / 2);
                self.probe_wait = self.probe_wait.min(PROBE_LIMIT);
                self.ts_probe = self.current.wrapping_add(self.probe_wait);
                self.probe |= ASK_SEND;
            }
        } else {
            self.ts_probe = 0;
            self.probe_wait = 0;
        }
    }

    /// Writes the window question and answer flagged since the last flush
    /// into `buf`, using `header` as the template, and clears the flags.
    pub(super) fn write_probes<H: Host<P>>(
        &mut self,
        host: &mut H,
        mut buf: Vec<u8>,
        header: &mut SegmentHeader,
    ) -> Vec<u8> {
        if self.probe & ASK_SEND != 0 {
            header.cmd = Command::WindowAsk as u8;
            buf = self.make_room(host, buf, OVERHEAD);
            header.encode(&mut buf);
        }
        if self.probe & ASK_TELL != 0 {
            header.cmd = Command::WindowTell as u8;
            buf = self.make_room(host, buf, OVERHEAD);
            header.encode(&mut buf);
        }
        self.probe = 0;
        buf
    }
}
