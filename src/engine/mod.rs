//! The sans-IO KCP engine: the protocol state machine and nothing else.
//!
//! No sockets, no clock, no C types. Time is a `u32` millisecond clock the
//! caller passes in (it may wrap past 2^32); datagrams leave through an
//! [`Output`] the caller provides; datagrams arrive through [`Kcp::input`].
//! The caller asks [`Kcp::check`] when to call [`Kcp::update`] next.
//!
//! Observable behaviour (wire bytes, counters, timers) is identical to the
//! reference `ikcp.c` 1.x, or 2.x with [`Flavour::V2`]; congestion control
//! is the reference's built-in algorithm unless a [`CongestionControl`] is
//! installed; the data structures are not: the send and receive
//! windows are rings indexed by sequence number, so acknowledging a segment
//! or inserting an out-of-order one costs O(1) instead of a list walk.
#![forbid(unsafe_code)]

mod acks;
mod buffers;
mod codec;
mod congestion;
mod constants;
mod controller;
mod error;
mod flush;
mod host;
mod input;
mod kcp;
mod output;
mod payload;
mod probe;
mod recv;
mod recv_window;
mod rtt;
mod send;
mod send_window;
mod stats;
mod tail;
mod timers;

pub use codec::{conv_of, segments, Command, SegmentHeader, HEADER_LEN};
pub use congestion::{BuiltIn, CongestionControl, Window};
pub use constants::*;
pub use controller::Flavour;
pub use error::{ConfigError, InputError, RecvError, SendError};
pub use kcp::Kcp;
pub use output::{LogMask, Output};
pub use payload::{Payload, SegmentBuf};
#[cfg(feature = "capi")]
pub(crate) use recv::copy_into;
pub use stats::Stats;
#[cfg(feature = "capi")]
pub(crate) use tail::tail_fields_by_name;
pub use tail::{PlainTail, TailFields};

#[cfg(feature = "abi2")]
pub(crate) use controller::{CcEvent, CcOutcome};
#[cfg(feature = "capi")]
pub(crate) use host::{Host, LentDatagram};
