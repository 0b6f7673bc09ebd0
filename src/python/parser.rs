//! `Parser`: the core parser as a Python class, and the conversions of its events' fields.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyList, PyMemoryView, PyString, PyTuple, PyType,
};

use super::event::new_event;
use crate::event::RawEventRef;
use crate::parser::bytes_eq;
use crate::{EventRef, EventSink, Parser as CoreParser, RetryMs, DEFAULT_MAX_EVENT_SIZE};

/// The last Python string made for an event type, reused while the type stays the same so that
/// consecutive events share one object.
#[derive(Default)]
struct RepeatCache {
    bytes: Vec<u8>,
    object: Option<Py<PyString>>,
}

impl RepeatCache {
    fn get<'py>(&mut self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
        match &self.object {
            Some(object) if bytes_eq(&self.bytes, bytes) => Ok(object.bind(py).clone()),
            _ => {
                let object = decode_to_py(py, bytes)?;
                self.bytes.clear();
                self.bytes.extend_from_slice(bytes);
                self.object = Some(object.clone().unbind());
                Ok(object)
            }
        }
    }
}

/// The Python string of the last event's id, reused while the parser's id stays the same.
#[derive(Default)]
struct IdCache {
    version: u64,
    object: Option<Py<PyString>>,
}

impl IdCache {
    fn get<'py>(
        &mut self,
        py: Python<'py>,
        id: &str,
        version: u64,
    ) -> PyResult<Bound<'py, PyString>> {
        match &self.object {
            Some(object) if self.version == version => Ok(object.bind(py).clone()),
            _ => {
                let object = decode_to_py(py, id.as_bytes())?;
                self.version = version;
                self.object = Some(object.clone().unbind());
                Ok(object)
            }
        }
    }
}

/// The Python value of the parser's `retry`, converted when it changes rather than on each read.
struct RetryCache {
    digits: Option<RetryMs>,
    object: Py<PyAny>,
}

impl RetryCache {
    fn new(py: Python<'_>) -> Self {
        Self {
            digits: None,
            object: py.None(),
        }
    }

    fn get<'py>(
        &mut self,
        py: Python<'py>,
        retry: Option<&RetryMs>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.digits.as_ref() != retry {
            self.object = match retry {
                Some(retry) => retry_to_py(py, retry)?.unbind(),
                None => py.None(),
            };
            self.digits = retry.cloned();
        }
        Ok(self.object.bind(py).clone())
    }
}

/// A Python `str` from UTF-8 that may be invalid, with U+FFFD for invalid sequences.
///
/// CPython validates while it copies, so valid input (the usual case) is read once instead of
/// being validated by Rust first; invalid input is decoded in the same pass by CPython's
/// "replace" handler, which substitutes maximal subparts as Rust's lossy decoder does.
fn decode_to_py<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe `bytes`, a slice of at most isize::MAX bytes; the
    // result is a new reference to a str, or NULL with an exception set.
    unsafe {
        let object = ffi::PyUnicode_DecodeUTF8(
            bytes.as_ptr().cast(),
            bytes.len() as isize,
            c"replace".as_ptr(),
        );
        Bound::from_owned_ptr_or_err(py, object).map(|object| object.cast_into_unchecked())
    }
}

/// Builds the Python events of one chunk.
///
/// An error while building one event (in practice a `MemoryError`) does not stop the others:
/// the core has parsed the whole chunk either way, so every event that can be built is, and
/// the first error is raised afterwards carrying them (see [`with_events`]).
struct PySink<'py, 'c> {
    py: Python<'py>,
    event_types: &'c mut RepeatCache,
    ids: &'c mut IdCache,
    comments: &'c mut Vec<(usize, Py<PyString>)>,
    events: Vec<Bound<'py, PyAny>>,
    error: Option<PyErr>,
}

impl<'py> PySink<'py, '_> {
    /// Builds one event; `event_type` is empty for the default type.
    fn make(
        &mut self,
        event_type: &[u8],
        data: Bound<'py, PyString>,
        id: Bound<'py, PyString>,
        retry: Option<&RetryMs>,
    ) -> PyResult<()> {
        let py = self.py;
        let event_type = if event_type.is_empty() || event_type == b"message" {
            intern!(py, "message").clone()
        } else {
            self.event_types.get(py, event_type)?
        };
        let retry = match retry {
            Some(retry) => retry_to_py(py, retry)?,
            None => py.None().into_bound(py),
        };
        let object = new_event(py, event_type, data, id, retry)?;
        self.events.push(object);
        Ok(())
    }

    fn keep_first_error(&mut self, result: PyResult<()>) {
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }
}

impl EventSink for PySink<'_, '_> {
    fn on_event(&mut self, event: EventRef<'_>) {
        let result = decode_to_py(self.py, event.data.as_bytes()).and_then(|data| {
            let id = decode_to_py(self.py, event.id.as_bytes())?;
            self.make(event.event.as_bytes(), data, id, event.retry)
        });
        self.keep_first_error(result);
    }

    /// The parser's path: the data go to CPython undecoded (see [`decode_to_py`]).
    fn on_raw_event(&mut self, event: RawEventRef<'_>) {
        let result = self
            .ids
            .get(self.py, event.id, event.id_version)
            .and_then(|id| {
                let data = decode_to_py(self.py, event.data)?;
                self.make(event.event, data, id, event.retry)
            });
        self.keep_first_error(result);
    }

    /// Only called when the parser keeps comments. The comment's place among the chunk's
    /// events is the number of events built before it (those that failed to build are in no
    /// list, so they do not count).
    fn on_raw_comment(&mut self, comment: &[u8]) {
        let position = self.events.len();
        let result = decode_to_py(self.py, comment)
            .map(|text| self.comments.push((position, text.unbind())));
        self.keep_first_error(result);
    }
}

/// `retry:` values are exact up to this many digits: CPython's default limit for converting a
/// string to an int (~10**4300 ms, far past any use), or the process's own limit when it set a
/// lower one (`sys.set_int_max_str_digits`). Longer values saturate at the largest value of that
/// many digits, rather than raise or cost quadratic time for a hostile server's megabyte of
/// digits.
pub(super) const RETRY_MAX_DIGITS: usize = 4300;

/// The lowest limit a process can set on int/str conversions
/// (`sys.int_info.str_digits_check_threshold`): values this short never look the limit up.
const INT_STR_DIGITS_THRESHOLD: usize = 640;

fn retry_to_py<'py>(py: Python<'py>, retry: &RetryMs) -> PyResult<Bound<'py, PyAny>> {
    // The FFI calls, unlike PyO3's infallible conversions, report a failed allocation as an
    // error, which then carries the chunk's events (see `PySink`) instead of panicking.
    if let Some(value) = retry.as_u64() {
        // SAFETY: returns a new reference, or NULL with an exception set.
        return unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromUnsignedLongLong(value))
        };
    }
    // Past u64: Python's int holds it exactly, as the spec asks.
    let digits = retry.digits();
    let max_digits = if digits.len() <= INT_STR_DIGITS_THRESHOLD {
        RETRY_MAX_DIGITS
    } else {
        retry_max_digits(py)?
    };
    if digits.len() > max_digits {
        return saturated_retry(py, max_digits);
    }
    let digits = std::ffi::CString::new(digits).expect("ASCII digits have no NUL");
    // SAFETY: `digits` is a NUL-terminated string of decimal digits; returns a new reference,
    // or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyLong_FromString(digits.as_ptr(), std::ptr::null_mut(), 10),
        )
    }
}

/// [`RETRY_MAX_DIGITS`], or the process's int/str conversion limit when it is lower.
fn retry_max_digits(py: Python<'_>) -> PyResult<usize> {
    let sys = py.import(intern!(py, "sys"))?;
    let name = intern!(py, "get_int_max_str_digits");
    // Interpreters older than the limit (before 3.11 and its security backports) have none.
    if !sys.hasattr(name)? {
        return Ok(RETRY_MAX_DIGITS);
    }
    let limit: usize = sys.getattr(name)?.call0()?.extract()?;
    Ok(if limit == 0 {
        RETRY_MAX_DIGITS
    } else {
        limit.min(RETRY_MAX_DIGITS)
    })
}

/// `10**digits - 1`, computed without a str conversion.
fn saturated_retry(py: Python<'_>, digits: usize) -> PyResult<Bound<'_, PyAny>> {
    static DEFAULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let compute = || 10_u8.into_pyobject(py)?.pow(digits, py.None())?.sub(1_u8);
    if digits == RETRY_MAX_DIGITS {
        let value = DEFAULT.get_or_try_init(py, || compute().map(Bound::unbind))?;
        return Ok(value.bind(py).clone());
    }
    compute()
}

/// `max_event_size` as a positive byte count, with a clear error for anything else. The range is
/// the pure parser's: 1 to `sys.maxsize`, the largest size of a Python object.
fn event_size_limit(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        let kind = value.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "max_event_size must be an int, not {kind}"
        )));
    }
    match value.extract::<isize>() {
        Ok(size) if size > 0 => Ok(size.unsigned_abs()),
        _ => Err(PyValueError::new_err(format!(
            "max_event_size must be a positive number of bytes that fits in memory, not {value}"
        ))),
    }
}

/// The arguments of `Parser()`, checked as the pure parser (`fastsse._pure`) checks them: the
/// same errors with the same messages.
struct ParserOptions {
    last_event_id: String,
    max_event_size: usize,
    skip_oversized: bool,
    comments: bool,
    dataless_blocks: bool,
}

impl ParserOptions {
    fn from_kwargs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut options = Self {
            last_event_id: String::new(),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            skip_oversized: false,
            comments: false,
            dataless_blocks: false,
        };
        let Some(kwargs) = kwargs else {
            return Ok(options);
        };
        for (key, value) in kwargs.iter() {
            match key.extract::<String>()?.as_str() {
                "last_event_id" => options.last_event_id = resume_id(&value)?,
                "max_event_size" => options.max_event_size = event_size_limit(&value)?,
                "on_oversize" => options.skip_oversized = skips_oversized(&value)?,
                "comments" => options.comments = flag("comments", &value)?,
                "dataless_blocks" => options.dataless_blocks = flag("dataless_blocks", &value)?,
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "Parser() got an unexpected keyword argument {}",
                        key.repr()?
                    )))
                }
            }
        }
        Ok(options)
    }
}

/// A `bool` argument: True or False, nothing else.
fn flag(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(value
        .cast::<PyBool>()
        .map_err(|_| type_error(&format!("{name} must be True or False"), value))?
        .is_true())
}

/// A TypeError saying what `value`'s parameter takes, and the type it got.
fn type_error(takes: &str, value: &Bound<'_, PyAny>) -> PyErr {
    match value.get_type().name() {
        Ok(kind) => PyTypeError::new_err(format!("{takes}, not {kind}")),
        Err(error) => error,
    }
}

/// `last_event_id`: any id a stream could have set, which is also one that can be sent back.
fn resume_id(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let id: String = value
        .cast::<PyString>()
        .map_err(|_| type_error("last_event_id must be a str", value))?
        .to_cow()
        .map_err(|_| {
            PyValueError::new_err(
                "last_event_id must be text that UTF-8 can encode, not one with a lone surrogate",
            )
        })?
        .into_owned();
    if id.contains(['\0', '\r', '\n']) {
        return Err(PyValueError::new_err(format!(
            "last_event_id must not contain U+0000 NULL, CR or LF (no stream can set such an \
             id, and it could not be sent as the Last-Event-ID header), not {}",
            value.repr()?
        )));
    }
    Ok(id)
}

/// `on_oversize`: whether an oversized event is skipped ("skip") or raises ("error").
fn skips_oversized(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let mode = value
        .cast::<PyString>()
        .map_err(|_| type_error("on_oversize must be a str, 'error' or 'skip'", value))?;
    match &*mode.to_cow().unwrap_or_default() {
        "error" => Ok(false),
        "skip" => Ok(true),
        _ => Err(PyValueError::new_err(format!(
            "on_oversize must be 'error' or 'skip', not {}",
            value.repr()?
        ))),
    }
}

// Sharing a parser between threads is safe: `feed` never releases the GIL and runs no Python
// code while it holds the parser (the `EventTooLargeError` is built after), so concurrent calls
// run one after the other, each on its whole chunk. Releasing the GIL for large chunks was
// measured and rejected: with another Python thread busy, reacquiring it cost more than the
// parse. The only way to reach a parser during a call on it is from a finaliser that a garbage
// collection inside that call runs (CPython before 3.12): that gets `busy_error`.
// The doc comment below is the class's docstring (help() shows it; _fastsse.pyi repeats it).
/// An incremental, spec-exact text/event-stream parser, for one stream and its reconnections.
///
/// Keyword-only parameters:
///
/// - ``last_event_id`` (str, default ""): the id to resume from; it is ``last_event_id`` and
///   the id of the events until the stream sets another. An id holding U+0000 NULL, CR or LF
///   is refused (ValueError): no stream can set one, and it could not be sent back as the
///   Last-Event-ID header.
/// - ``max_event_size`` (int >= 1, default DEFAULT_MAX_EVENT_SIZE, 16 MiB): the bound on one
///   event's field lines, in bytes. A larger event is discarded as its bytes arrive (memory
///   stays bounded) and parsing resumes after the blank line that ends it.
/// - ``on_oversize`` ("error" or "skip", default "error"): "error" raises EventTooLargeError
///   from the feed() that discarded an event; "skip" only counts it in ``oversized``.
/// - ``comments`` (bool, default False): keep each comment line's text (": ping" gives
///   "ping": the text after the colon and one optional space, cut to max_event_size bytes) for
///   take_comments(), or for take_comments_at() with its place among the events in wire
///   order. Off, comments cost nothing.
/// - ``dataless_blocks`` (bool, default False): dispatch a block that carries an ``id:`` or
///   ``retry:`` field but no ``data:`` as an event with empty data, as httpx-sse and httpx2 do
///   (the spec dispatches nothing for it; the MCP SDK resumes from such a priming block's id).
///   The event has the block's type (``event:``, else "message"), the last event ID after the
///   block and the block's ``retry``. A block with only ``event:`` or unknown fields, or only
///   comments, is still not dispatched; an ``id:`` holding NULL or a ``retry:`` that is not
///   digits does not count, as it sets nothing. Off, the spec's rule holds, at no cost.
///
/// Wrong types raise TypeError, wrong values ValueError, naming the parameter.
///
/// Errors raised while a chunk's events are built (EventTooLargeError, or a MemoryError) come
/// after the whole chunk is parsed and carry its completed events in ``.events``.
#[pyclass(module = "fastsse._fastsse", name = "Parser")]
pub struct Parser {
    core: CoreParser,
    skip_oversized: bool,
    /// The comments received since `take_comments` or `take_comments_at` last ran (only with
    /// `comments=True`), each with the number of events its chunk's list holds before it.
    comments: Vec<(usize, Py<PyString>)>,
    event_types: RepeatCache,
    ids: IdCache,
    retry: RetryCache,
    /// The previous chunk's event count, to size the next chunk's list at once.
    batch_capacity: usize,
}

/// What `feed` found, handed out once the parser is released.
struct Batch<'py> {
    events: Bound<'py, PyList>,
    error: Option<PyErr>,
    discarded: u64,
    max_event_size: usize,
}

#[pymethods]
impl Parser {
    // The arguments are read from `**options` so that each one gets an error naming it (and an
    // explicit None is refused, not taken for the default); the text signature shows them.
    #[new]
    #[pyo3(
        signature = (**options),
        text_signature = "(*, last_event_id='', max_event_size=16777216, on_oversize='error', \
                          comments=False, dataless_blocks=False)"
    )]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = ParserOptions::from_kwargs(options)?;
        Ok(Self {
            core: CoreParser::new()
                .with_max_event_size(options.max_event_size)
                .with_last_event_id(&options.last_event_id)
                .with_comments(options.comments)
                .with_dataless_blocks(options.dataless_blocks),
            skip_oversized: options.skip_oversized,
            comments: Vec::new(),
            event_types: RepeatCache::default(),
            ids: IdCache::default(),
            retry: RetryCache::new(py),
            batch_capacity: 0,
        })
    }

    /// Parses a chunk of the stream and returns the events it completes.
    fn feed<'py>(slf: &Bound<'py, Self>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let batch = if let Ok(bytes) = data.cast::<PyBytes>() {
            borrow_mut(slf)?.feed_bytes(py, bytes.as_bytes())?
        } else if let Ok(array) = data.cast::<PyByteArray>() {
            // A bytearray could be resized while events are built: parse a snapshot.
            let snapshot = array.to_vec();
            borrow_mut(slf)?.feed_bytes(py, &snapshot)?
        } else if data.is_instance_of::<PyMemoryView>() {
            // One copy, which also snapshots a mutable buffer. (Reading the buffer in place
            // needs the buffer protocol, in the limited API only from Python 3.11.)
            let bytes = data
                .call_method0(intern!(py, "tobytes"))?
                .cast_into::<PyBytes>()?;
            borrow_mut(slf)?.feed_bytes(py, bytes.as_bytes())?
        } else {
            let kind = data.get_type().name()?;
            let hint = if data.is_instance_of::<PyString>() {
                "; encode text first, e.g. text.encode()"
            } else {
                ""
            };
            return Err(PyTypeError::new_err(format!(
                "feed() takes bytes, bytearray or memoryview, not {kind}{hint}"
            )));
        };
        batch.into_result(py)
    }

    /// Ends the stream: an unterminated event is discarded (as the spec says) and the parser
    /// is ready for a new connection, keeping `last_event_id` and `retry`.
    fn finish<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        borrow_mut(slf)?.core.finish();
        Ok(PyList::empty(slf.py()))
    }

    /// The comments fed since the last call, in order, and forgets them (always empty unless
    /// the parser was made with comments=True).
    fn take_comments<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let comments = std::mem::take(&mut borrow_mut(slf)?.comments);
        let py = slf.py();
        new_list(
            py,
            comments
                .into_iter()
                .map(|(_, text)| text.into_bound(py))
                .collect(),
        )
    }

    /// The comments fed since the last take, in order, each as `(position, text)`, and forgets
    /// them. `position` is the number of events that came before the comment in the list its
    /// feed() returned (or its EventTooLargeError's `.events`): where the comment belongs
    /// among them, in wire order.
    fn take_comments_at<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let comments = std::mem::take(&mut borrow_mut(slf)?.comments);
        let py = slf.py();
        let pairs = comments
            .into_iter()
            .map(|(position, text)| {
                PyTuple::new(
                    py,
                    [
                        position.into_pyobject(py)?.into_any(),
                        text.into_bound(py).into_any(),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        new_list(py, pairs)
    }

    #[getter]
    fn last_event_id<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyString>> {
        let mut this = borrow_mut(slf)?;
        let this = &mut *this;
        this.ids
            .get(slf.py(), this.core.last_event_id(), this.core.id_version())
    }

    #[getter]
    fn retry<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let mut this = borrow_mut(slf)?;
        let this = &mut *this;
        this.retry.get(slf.py(), this.core.retry())
    }

    /// Whether an event has begun (a field or part of a line arrived) and not yet ended.
    #[getter]
    fn pending(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(borrow(slf)?.core.pending())
    }

    #[getter]
    fn oversized(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Ok(borrow(slf)?.core.oversized())
    }

    /// Whether blocks without data are dispatched (see ``dataless_blocks`` above).
    #[getter]
    fn dataless_blocks(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(borrow(slf)?.core.dataless_blocks())
    }

    #[getter]
    fn max_event_size(slf: &Bound<'_, Self>) -> PyResult<usize> {
        Ok(borrow(slf)?.core.max_event_size())
    }
}

/// The error for a call on a parser that is in the middle of another call.
fn busy_error() -> PyErr {
    PyRuntimeError::new_err(
        "this Parser is in the middle of another call (reached from a finaliser or callback \
         run inside it): a Parser parses one stream, one call at a time",
    )
}

fn borrow<'py>(slf: &Bound<'py, Parser>) -> PyResult<PyRef<'py, Parser>> {
    slf.try_borrow().map_err(|_| busy_error())
}

fn borrow_mut<'py>(slf: &Bound<'py, Parser>) -> PyResult<PyRefMut<'py, Parser>> {
    slf.try_borrow_mut().map_err(|_| busy_error())
}

impl Parser {
    fn feed_bytes<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> PyResult<Batch<'py>> {
        let oversized_before = self.core.oversized();
        let mut sink = PySink {
            py,
            event_types: &mut self.event_types,
            ids: &mut self.ids,
            comments: &mut self.comments,
            events: Vec::with_capacity(self.batch_capacity),
            error: None,
        };
        self.core.feed(chunk, &mut sink);
        self.batch_capacity = sink.events.len();
        let mut error = sink.error;
        let events = new_list(py, sink.events)?;
        // Converted now, under the int/str limit in force while the chunk was parsed.
        if let Err(retry_error) = self.retry.get(py, self.core.retry()) {
            error.get_or_insert(retry_error);
        }
        Ok(Batch {
            events,
            error,
            discarded: self.core.oversized() - oversized_before,
            max_event_size: if self.skip_oversized {
                0
            } else {
                self.core.max_event_size()
            },
        })
    }
}

impl<'py> Batch<'py> {
    fn into_result(self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if let Some(error) = self.error {
            return Err(with_events(py, error, self.events));
        }
        if self.discarded == 0 || self.max_event_size == 0 {
            return Ok(self.events);
        }
        Err(too_large_error(
            py,
            self.events,
            self.max_event_size,
            self.discarded,
        ))
    }
}

/// A list of `items`; unlike `PyList::new`, a failed allocation is an error, not a panic.
fn new_list<'py, T>(py: Python<'py>, items: Vec<Bound<'py, T>>) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: PyList_New returns a new reference or NULL with an exception set. PyList_SetItem
    // steals the reference it is given and cannot fail here: the list is fresh and every index
    // is below its length.
    unsafe {
        let list = Bound::from_owned_ptr_or_err(py, ffi::PyList_New(items.len() as isize))?;
        for (index, item) in items.into_iter().enumerate() {
            ffi::PyList_SetItem(list.as_ptr(), index as isize, item.into_ptr());
        }
        Ok(list.cast_into_unchecked())
    }
}

/// Attaches the chunk's completed events to an error raised while they were built, as
/// `EventTooLargeError.events` does, so that nothing the chunk held is lost with it.
fn with_events(py: Python<'_>, error: PyErr, events: Bound<'_, PyList>) -> PyErr {
    let value = error.value(py);
    let count = events.len();
    if value.setattr(intern!(py, "events"), events).is_ok() {
        if let Ok(add_note) = value.getattr(intern!(py, "add_note")) {
            let note = format!(
                "fastsse: the chunk was parsed whole; the {count} events it completed are in \
                 .events"
            );
            // A note only helps the reader; failing to add one changes nothing else.
            let _ = add_note.call1((note,));
        }
    }
    error
}

fn too_large_error(
    py: Python<'_>,
    events: Bound<'_, PyList>,
    max_event_size: usize,
    discarded: u64,
) -> PyErr {
    static ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let build = || -> PyResult<PyErr> {
        let class = ERROR.import(py, "fastsse._errors", "EventTooLargeError")?;
        let message = format!(
            "an event exceeded max_event_size ({max_event_size} bytes); its bytes were \
             discarded up to the blank line that ends it; the {} events this chunk completed \
             are in .events",
            events.len()
        );
        let kwargs = PyDict::new(py);
        kwargs.set_item("events", &events)?;
        kwargs.set_item("max_event_size", max_event_size)?;
        kwargs.set_item("discarded", discarded)?;
        Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|error| with_events(py, error, events))
}
