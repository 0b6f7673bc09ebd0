//! fastsse: a spec-exact, incremental Server-Sent Events (`text/event-stream`) parser.
//!
//! The core ([`Parser`]) is pure Rust and sans-I/O: feed it byte chunks split anywhere, and it
//! hands every completed event to an [`EventSink`]. The Python binding lives in `python/`,
//! behind the `python` cargo feature.

mod event;
mod parser;
#[cfg(feature = "python")]
mod python;

pub use event::{Event, EventRef, EventSink, RawEventRef, RetryMs};
pub use parser::{Parser, DEFAULT_MAX_EVENT_SIZE};
