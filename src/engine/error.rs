//! Errors of the Rust API. The C ABI maps them back to the reference's codes.

use std::fmt;

/// Why [`Kcp::send`](super::Kcp::send) refused data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message needs more than 127 fragments (C: -2).
    TooLarge,
    /// A payload buffer could not be allocated (C: -2).
    OutOfMemory,
    /// The MSS is zero, so nothing can be fragmented (C: -1).
    InvalidMss,
}

/// Why [`Kcp::recv`](super::Kcp::recv) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing is queued (C: -1).
    Empty,
    /// The next message has not fully arrived yet (C: -2).
    Incomplete,
    /// The next message is larger than the buffer (C: -3).
    BufferTooSmall {
        /// Size of the next message.
        needed: usize,
    },
}

/// Why [`Kcp::input`](super::Kcp::input) rejected a datagram. Segments before
/// the offending one have already been processed, as in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// Shorter than one header (C: -1).
    TooShort,
    /// A segment carries another conversation id (C: -1).
    ConvMismatch,
    /// A segment's length field exceeds the datagram (C: -2).
    BadLength,
    /// A segment has an unknown command byte (C: -3).
    UnknownCommand,
}

/// An impossible configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// MTU below 50 bytes (C: -1).
    MtuTooSmall,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::TooLarge => "message needs more than 127 fragments",
            SendError::OutOfMemory => "payload allocation failed",
            SendError::InvalidMss => "mss is zero",
        })
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("no message queued"),
            RecvError::Incomplete => f.write_str("next message is incomplete"),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: next message has {needed} bytes")
            }
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputError::TooShort => "datagram shorter than a segment header",
            InputError::ConvMismatch => "conversation id mismatch",
            InputError::BadLength => "segment length exceeds datagram",
            InputError::UnknownCommand => "unknown segment command",
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::MtuTooSmall => "mtu below 50 bytes",
        })
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for RecvError {}
impl std::error::Error for InputError {}
impl std::error::Error for ConfigError {}
