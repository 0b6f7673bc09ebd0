//! What the parser hands out: events, borrowed or owned, and the sink that receives them.

use std::borrow::Cow;

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

/// An event as it is dispatched, before its type and data are decoded from UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEventRef<'a> {
    /// The event type's bytes; empty when the stream named none (the type is then `"message"`).
    pub event: &'a [u8],
    /// The data lines' bytes, joined with `\n`; they may hold invalid UTF-8.
    pub data: &'a [u8],
    /// The last event ID at the time of dispatch.
    pub id: &'a str,
    /// Changes whenever `id` does (within one parser), so that a sink can reuse what it built
    /// for the previous event's id without comparing the strings.
    pub id_version: u64,
    /// The `retry:` value given inside this event's block, if any.
    pub retry: Option<&'a RetryMs>,
}

impl RawEventRef<'_> {
    /// Decodes the event as the spec says (invalid UTF-8 becomes U+FFFD) and hands it to `f`.
    pub fn decoded<R>(&self, f: impl FnOnce(EventRef<'_>) -> R) -> R {
        let event_type = decode(self.event);
        let data = decode(self.data);
        f(EventRef {
            event: if event_type.is_empty() {
                "message"
            } else {
                &event_type
            },
            data: &data,
            id: self.id,
            retry: self.retry,
        })
    }
}

/// Receives each event the parser dispatches, in stream order.
pub trait EventSink {
    fn on_event(&mut self, event: EventRef<'_>);

    /// What the parser calls. The default decodes the event and passes it to
    /// [`EventSink::on_event`]; a sink that turns the bytes into strings of its own (the Python
    /// binding lets CPython decode them) overrides it to skip a second pass over the data.
    fn on_raw_event(&mut self, event: RawEventRef<'_>) {
        event.decoded(|event| self.on_event(event));
    }

    /// A comment line's text, after its colon and one optional space, at most `max_event_size`
    /// bytes of it. Called only by a parser made [`Parser::with_comments`]; does nothing by
    /// default.
    ///
    /// [`Parser::with_comments`]: crate::Parser::with_comments
    fn on_comment(&mut self, _comment: &str) {}

    /// What the parser calls for a comment: its bytes, which may hold invalid UTF-8 (and may
    /// end inside a UTF-8 sequence when the comment was cut to `max_event_size`). The default
    /// decodes them, with U+FFFD for invalid sequences, for [`EventSink::on_comment`].
    fn on_raw_comment(&mut self, comment: &[u8]) {
        self.on_comment(&decode(comment));
    }
}

/// Decodes UTF-8, with U+FFFD for invalid sequences.
///
/// Valid input, the usual case, is checked by `str::from_utf8`, which skips ASCII a word at a
/// time; `String::from_utf8_lossy` walks every byte and is several times slower on long values.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

impl EventSink for Vec<Event> {
    fn on_event(&mut self, event: EventRef<'_>) {
        self.push(event.into());
    }
}
