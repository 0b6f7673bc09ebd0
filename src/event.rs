//! What the parser hands out: events, borrowed or owned, and the sink that receives them.

/// A `retry:` value in milliseconds.
///
/// The spec sets the reconnection time to "that integer", whatever its size, so the value is
/// kept as its decimal digits (leading zeros removed) rather than clamped to a machine integer.
/// Clamping to a sane range is the reconnect policy's job, not the parser's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryMs(Box<str>);

impl RetryMs {
    /// Parses a field value; `None` unless it is one or more ASCII digits and nothing else.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let significant = match value.iter().position(|&b| b != b'0') {
            Some(first) => &value[first..],
            None => b"0",
        };
        // ASCII digits are valid UTF-8.
        Some(Self(String::from_utf8_lossy(significant).into()))
    }

    /// The value's decimal digits, without leading zeros.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The value as a `u64`, or `None` when it does not fit.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

/// An event as it is dispatched, borrowing the parser's buffers.
///
/// Sinks that build their own objects (such as the Python binding) read it without copying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type; `"message"` when the stream named none.
    pub event: &'a str,
    /// The data lines, joined with `\n`.
    pub data: &'a str,
    /// The last event ID at the time of dispatch (it persists across events, per the spec).
    pub id: &'a str,
    /// The `retry:` value given inside this event's block, if any.
    pub retry: Option<&'a RetryMs>,
}

/// An owned event, for Rust users and tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: String,
    pub retry: Option<RetryMs>,
}

impl From<EventRef<'_>> for Event {
    fn from(event: EventRef<'_>) -> Self {
        Self {
            event: event.event.to_owned(),
            data: event.data.to_owned(),
            id: event.id.to_owned(),
            retry: event.retry.cloned(),
        }
    }
}

/// Receives each event the parser dispatches, in stream order.
pub trait EventSink {
    fn on_event(&mut self, event: EventRef<'_>);
}

impl EventSink for Vec<Event> {
    fn on_event(&mut self, event: EventRef<'_>) {
        self.push(event.into());
    }
}
