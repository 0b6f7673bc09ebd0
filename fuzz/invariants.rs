//! The parser's chunking invariants, checked on any stream: by the cargo-fuzz target
//! (`fuzz_targets/chunking.rs`, on arbitrary bytes) and by the property tests that `cargo test`
//! runs (`properties.rs`, on generated event streams and replayed fuzz findings).
//!
//! A [`Plan`] is a stream cut into connections (each ended by `finish()`) and each connection
//! into chunks (empty ones included). [`check`] asserts:
//! - after every chunk of the plan, the events so far, `last_event_id`, `retry`, `oversized` and
//!   `pending` are exactly those of a parser fed the same bytes in one piece;
//! - fed one byte at a time (an empty chunk before each byte) and fed whole, each connection
//!   gives the same events and the same state at its end, and `finish()` reports `pending`;
//! - without a size limit, the events and state agree with [`oracle`], an independent reading
//!   of the spec that decodes each connection whole first and then splits it into lines;
//! - with a limit, the events are those of the unlimited run with the oversized ones taken out
//!   (ids aside: a discarded event's `id:` is never dispatched), and identical to it when
//!   nothing was discarded;
//! - reporting comments (`with_comments`) changes no event and no state; the comments are the
//!   same whole and byte by byte, the oracle's without a limit, and as many with one (each cut
//!   to the limit).

use fastsse::{Event, EventRef, EventSink, Parser};

/// A stream as connections, each a list of chunks.
#[derive(Clone, Debug)]
pub struct Plan {
    pub connections: Vec<Vec<Vec<u8>>>,
    /// The last event ID the parser resumes from.
    pub last_event_id: String,
    /// The parser dispatches blocks without data (`with_dataless_blocks`).
    pub dataless_blocks: bool,
}

/// The state the invariants compare, besides the events.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    last_event_id: String,
    retry: Option<String>,
    oversized: u64,
    pending: bool,
}

fn state(parser: &Parser) -> State {
    State {
        last_event_id: parser.last_event_id().to_owned(),
        retry: parser.retry().map(|retry| retry.digits().to_owned()),
        oversized: parser.oversized(),
        pending: parser.pending(),
    }
}

/// An event as the oracle states it: type, data, id and the `retry:` digits of its block.
pub type OracleEvent = (String, String, String, Option<String>);

fn as_oracle_event(event: &Event) -> OracleEvent {
    (
        event.event.clone(),
        event.data.clone(),
        event.id.clone(),
        event.retry.as_ref().map(|retry| retry.digits().to_owned()),
    )
}

/// Decodes a fuzzer's input into a plan and a size limit.
///
/// Byte 0 sets the limit (1 to 256 bytes); byte 1 holds the number of chunk lengths that follow
/// (low six bits), whether to resume from a last event ID (bit 6) and whether blocks without
/// data are dispatched (bit 7). Each length byte is a
/// chunk of 0 to 63 bytes, or `0xFF` for the end of a connection. The remaining bytes are the
/// stream; what the lengths leave over is the last chunk.
pub fn decode_fuzz_input(input: &[u8]) -> (Plan, usize) {
    let limit = 1 + usize::from(input.first().copied().unwrap_or(0));
    let header = input.get(1).copied().unwrap_or(0);
    let lengths_end = (2 + usize::from(header & 0x3f)).min(input.len());
    let lengths = input.get(2..lengths_end).unwrap_or_default();
    let mut stream = input.get(lengths_end..).unwrap_or_default();
    let mut connections = vec![Vec::new()];
    for &length in lengths {
        if length == 0xff {
            connections.push(Vec::new());
            continue;
        }
        let (chunk, rest) = stream.split_at(usize::from(length & 0x3f).min(stream.len()));
        connections
            .last_mut()
            .expect("one connection")
            .push(chunk.to_vec());
        stream = rest;
    }
    connections
        .last_mut()
        .expect("one connection")
        .push(stream.to_vec());
    let last_event_id = if header & 0x40 != 0 { "resume" } else { "" };
    let plan = Plan {
        connections,
        last_event_id: last_event_id.to_owned(),
        dataless_blocks: header & 0x80 != 0,
    };
    (plan, limit)
}

/// What the fuzz target checks: the plan without a limit (against the oracle) and with one.
pub fn check_fuzz_input(input: &[u8]) {
    let (plan, limit) = decode_fuzz_input(input);
    check(&plan, Some(limit));
}

/// Asserts every invariant of the module docs for `plan`, without a size limit and, when
/// `limit` is given, with it.
pub fn check(plan: &Plan, limit: Option<usize>) {
    let unlimited = check_chunkings(plan, None);
    let expected = oracle_plan(plan);
    assert_eq!(unlimited, expected, "oracle, {plan:?}");
    if let Some(limit) = limit {
        let limited = check_chunkings(plan, Some(limit));
        check_limit(plan, limit, &unlimited, &limited);
    }
}

/// Events and the state at the end of each connection (before its `finish()`), and the
/// comments when they were asked for.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<OracleEvent>,
    states: Vec<State>,
    comments: Vec<String>,
}

/// Receives events and comments.
#[derive(Default)]
struct Sink {
    events: Vec<Event>,
    comments: Vec<String>,
}

impl EventSink for Sink {
    fn on_event(&mut self, event: EventRef<'_>) {
        self.events.push(event.into());
    }

    fn on_comment(&mut self, comment: &str) {
        self.comments.push(comment.to_owned());
    }
}

fn new_parser(plan: &Plan, limit: Option<usize>) -> Parser {
    let parser = Parser::new()
        .with_last_event_id(&plan.last_event_id)
        .with_dataless_blocks(plan.dataless_blocks);
    match limit {
        Some(limit) => parser.with_max_event_size(limit),
        None => parser,
    }
}

/// Feeds the plan three ways (whole and byte by byte with comments reported), checks that they
/// agree, and returns what they agree on.
fn check_chunkings(plan: &Plan, limit: Option<usize>) -> Outcome {
    let whole: Vec<Vec<Vec<u8>>> = plan.connections.iter().map(|c| vec![c.concat()]).collect();
    let bytewise: Vec<Vec<Vec<u8>>> = plan
        .connections
        .iter()
        .map(|chunks| {
            chunks
                .concat()
                .into_iter()
                .flat_map(|byte| [Vec::new(), vec![byte]])
                .collect()
        })
        .collect();
    let chunked = feed_checking_prefixes(plan, &plan.connections, limit);
    let context = format!("limit {limit:?}, {plan:?}");
    let outcome = feed(plan, &whole, limit);
    assert_eq!(
        (&outcome.events, &outcome.states),
        (&chunked.events, &chunked.states),
        "whole with comments vs chunks without, {context}"
    );
    assert_eq!(
        feed(plan, &bytewise, limit),
        outcome,
        "bytewise vs whole, {context}"
    );
    outcome
}

/// Feeds the plan with comments reported.
fn feed(plan: &Plan, connections: &[Vec<Vec<u8>>], limit: Option<usize>) -> Outcome {
    let mut parser = new_parser(plan, limit).with_comments(true);
    let mut sink = Sink::default();
    let mut outcome = Outcome {
        events: Vec::new(),
        states: Vec::new(),
        comments: Vec::new(),
    };
    for chunks in connections {
        for chunk in chunks {
            parser.feed(chunk, &mut sink);
            let events = std::mem::take(&mut sink.events);
            outcome.events.extend(events.iter().map(as_oracle_event));
        }
        outcome.states.push(state(&parser));
        let pending = parser.pending();
        assert_eq!(parser.finish(), pending, "finish() reports a dropped event");
        assert!(!parser.pending(), "nothing pending after finish()");
    }
    outcome.comments = sink.comments;
    outcome
}

/// Feeds the plan's chunks; after each one, compares the connection so far with a parser that
/// was fed the same bytes in one piece (from the state the connection started in).
fn feed_checking_prefixes(
    plan: &Plan,
    connections: &[Vec<Vec<u8>>],
    limit: Option<usize>,
) -> Outcome {
    let mut parser = new_parser(plan, limit);
    let mut outcome = Outcome {
        events: Vec::new(),
        states: Vec::new(),
        comments: Vec::new(),
    };
    for chunks in connections {
        let start = parser.clone();
        let mut prefix = Vec::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.feed_to_vec(chunk));
            prefix.extend_from_slice(chunk);
            let mut reference = start.clone();
            let reference_events = reference.feed_to_vec(&prefix);
            assert_eq!(events, reference_events, "events after prefix {prefix:?}");
            assert_eq!(state(&parser), state(&reference), "state after {prefix:?}");
        }
        outcome.events.extend(events.iter().map(as_oracle_event));
        outcome.states.push(state(&parser));
        parser.finish();
    }
    outcome
}

/// The limit only ever takes whole events out, counted, and changes nothing else.
fn check_limit(plan: &Plan, limit: usize, unlimited: &Outcome, limited: &Outcome) {
    let context = format!("limit {limit}, {plan:?}");
    // Comments are cut to the limit, never dropped.
    assert_eq!(
        limited.comments.len(),
        unlimited.comments.len(),
        "{context}"
    );
    for (cut, whole) in limited.comments.iter().zip(&unlimited.comments) {
        // U+FFFD takes three bytes where it replaced one invalid byte or a cut sequence.
        assert!(cut.len() <= 3 * limit, "comment past the limit, {context}");
        if whole.len() <= limit {
            assert_eq!(cut, whole, "{context}");
        }
    }
    let oversized = limited.states.last().map_or(0, |state| state.oversized);
    if oversized == 0 {
        assert_eq!(
            (&limited.events, &limited.states),
            (&unlimited.events, &unlimited.states),
            "a limit that discarded nothing, {context}"
        );
        return;
    }
    // A discarded event's `id:` never becomes the last event ID, so later ids may differ.
    let without_id = |event: &OracleEvent| (event.0.clone(), event.1.clone(), event.3.clone());
    let mut remaining = unlimited.events.iter().map(without_id);
    for event in &limited.events {
        let event = without_id(event);
        assert!(
            remaining.any(|candidate| candidate == event),
            "{event:?} is not one of the unlimited run's events, in order, {context}"
        );
        // U+FFFD takes three bytes where it replaced one invalid byte.
        assert!(event.1.len() <= 3 * limit, "data past the limit, {context}");
    }
    assert!(limited.events.len() <= unlimited.events.len());
}

/// The oracle for a whole plan: connections in turn, the last event ID and `retry` carried over.
fn oracle_plan(plan: &Plan) -> Outcome {
    let mut outcome = Outcome {
        events: Vec::new(),
        states: Vec::new(),
        comments: Vec::new(),
    };
    let mut last_event_id = plan.last_event_id.clone();
    let mut retry = None;
    for chunks in &plan.connections {
        let connection = oracle_with(&chunks.concat(), &last_event_id, plan.dataless_blocks);
        outcome.events.extend(connection.events);
        outcome.comments.extend(connection.comments);
        last_event_id = connection.last_event_id;
        retry = connection.retry.or(retry);
        outcome.states.push(State {
            last_event_id: last_event_id.clone(),
            retry: retry.clone(),
            oversized: 0,
            pending: connection.pending,
        });
    }
    outcome
}

/// What the oracle reads from one connection.
#[derive(Debug)]
pub struct OracleOutcome {
    pub events: Vec<OracleEvent>,
    /// What a parser that reports comments reports: each comment line after its colon and one
    /// optional space (the spec ignores them).
    pub comments: Vec<String>,
    pub last_event_id: String,
    pub retry: Option<String>,
    pub pending: bool,
}

/// WHATWG "Parsing an event stream", read as directly as possible: decode the whole stream as
/// UTF-8 (U+FFFD for invalid bytes, one leading BOM removed), split it into lines, then run the
/// steps of "Interpreting an event stream".
pub fn oracle(stream: &[u8], last_event_id: &str) -> OracleOutcome {
    oracle_with(stream, last_event_id, false)
}

/// [`oracle`], and with `dataless_blocks` a block that sets an id or a retry without data is
/// dispatched as an event with empty data (what httpx-sse and httpx2 do; see
/// `Parser::with_dataless_blocks`).
pub fn oracle_with(stream: &[u8], last_event_id: &str, dataless_blocks: bool) -> OracleOutcome {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            _ => line.push(c),
        }
    }
    // The text after the last line end is no line: the stream ended inside it.
    let unfinished = line;

    let mut outcome = OracleOutcome {
        events: Vec::new(),
        comments: Vec::new(),
        last_event_id: last_event_id.to_owned(),
        retry: None,
        pending: false,
    };
    let (mut data, mut event_type, mut event_retry) = (String::new(), String::new(), None);
    let mut id_buffer = last_event_id.to_owned();
    let mut fields_seen = false;
    // The block has an id or a retry field that was applied.
    let mut id_or_retry = false;
    for line in lines {
        if line.is_empty() {
            outcome.last_event_id.clone_from(&id_buffer);
            let dispatched = if !data.is_empty() {
                data.pop();
                Some(data.clone())
            } else if dataless_blocks && id_or_retry {
                Some(String::new())
            } else {
                None
            };
            if let Some(data) = dispatched {
                let event_type = if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    event_type.clone()
                };
                let id = outcome.last_event_id.clone();
                outcome.events.push((event_type, data, id, event_retry));
            }
            (data, event_type, event_retry) = (String::new(), String::new(), None);
            fields_seen = false;
            id_or_retry = false;
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            outcome.comments.push(comment.to_owned());
            continue;
        }
        fields_seen = true;
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match name {
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "event" => event_type = value.to_owned(),
            "id" if !value.contains('\0') => {
                id_buffer = value.to_owned();
                id_or_retry = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let digits = value.trim_start_matches('0');
                let digits = if digits.is_empty() { "0" } else { digits };
                outcome.retry = Some(digits.to_owned());
                event_retry = Some(digits.to_owned());
                id_or_retry = true;
            }
            _ => {}
        }
    }
    // An event has begun: a field line arrived since the last blank line, or part of a line
    // that is no comment. The start of a BOM that the stream ended inside is neither.
    let bom_start = !stream.is_empty() && b"\xEF\xBB\xBF".starts_with(stream);
    outcome.pending =
        fields_seen || (!unfinished.is_empty() && !unfinished.starts_with(':') && !bom_start);
    outcome
}
