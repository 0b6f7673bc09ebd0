//! The Python binding: `fastsse._fastsse`. Thin on purpose: it turns the core's borrowed
//! events into Python objects, one list per chunk, and does nothing the core could do.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyList, PyMemoryView, PyString, PyTuple, PyType,
};

use crate::event::RawEventRef;
use crate::parser::bytes_eq;
use crate::{EventRef, EventSink, Parser as CoreParser, RetryMs, DEFAULT_MAX_EVENT_SIZE};

/// One Server-Sent Event. Immutable; attribute names match httpx-sse's `ServerSentEvent`.
///
/// Every field is an exact `str`, or an exact `int` or `None` for `retry` (the constructor
/// copies subclasses): objects that can refer to nothing else, so an Event can never be part of
/// a reference cycle and is kept out of the garbage collector (see [`PySink::make`]).
///
/// The fields are `Py<...>` so that PyO3 exposes them as plain members, which Python reads
/// directly from the object; `retry` is `Py<PyAny>` holding `None` for that reason, where an
/// `Option` would need a getter function (23 ns per read instead of 9).
// A chunk's events are usually freed together, just before the next chunk's are made: the free
// list lets those reuse their memory. 2048 holds a 16 KiB chunk of `data: x` events (9 bytes:
// 1,820 events); a chunk of the smallest events (`data\n\n`, 6 bytes: 2,730) overflows it, and
// the rest are freed as usual.
#[pyclass(frozen, freelist = 2048, module = "fastsse._fastsse", name = "Event")]
pub struct Event {
    #[pyo3(get)]
    event: Py<PyString>,
    #[pyo3(get)]
    data: Py<PyString>,
    #[pyo3(get)]
    id: Py<PyString>,
    #[pyo3(get)]
    retry: Py<PyAny>,
}

#[pymethods]
impl Event {
    /// Like httpx-sse's `ServerSentEvent`: an empty or missing `event` means "message".
    #[new]
    #[pyo3(signature = (event = None, data = None, id = None, retry = None))]
    fn new(
        py: Python<'_>,
        event: Option<&Bound<'_, PyString>>,
        data: Option<&Bound<'_, PyString>>,
        id: Option<&Bound<'_, PyString>>,
        retry: Option<&Bound<'_, PyInt>>,
    ) -> PyResult<Self> {
        let text = |value: Option<&Bound<'_, PyString>>| -> PyResult<Py<PyString>> {
            match value {
                Some(value) => Ok(exact_str(value)?.unbind()),
                None => Ok(intern!(py, "").clone().unbind()),
            }
        };
        let event = match event.map(exact_str).transpose()? {
            Some(event) if event.len()? > 0 => event.unbind(),
            _ => intern!(py, "message").clone().unbind(),
        };
        Ok(Self {
            event,
            data: text(data)?,
            id: text(id)?,
            retry: match retry {
                Some(retry) => exact_int(retry)?.into_any().unbind(),
                None => py.None(),
            },
        })
    }

    /// The data decoded as JSON, with orjson when it is installed.
    fn json(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(json_loads(py)?.call1((self.data.bind(py),))?.unbind())
    }

    fn __eq__(&self, py: Python<'_>, other: &Self) -> PyResult<bool> {
        self.fields(py).eq(other.fields(py))
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.fields(py).hash()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut repr = format!(
            "Event(event={}, data={}, id={}",
            self.event.bind(py).repr()?,
            self.data.bind(py).repr()?,
            self.id.bind(py).repr()?
        );
        if !self.retry.is_none(py) {
            repr.push_str(&format!(", retry={}", self.retry.bind(py)));
        }
        repr.push(')');
        Ok(repr)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        (slf.get_type(), slf.get().fields(py)).into_pyobject(py)
    }
}

impl Event {
    fn fields<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        PyTuple::new(
            py,
            [
                self.event.bind(py).clone().into_any(),
                self.data.bind(py).clone().into_any(),
                self.id.bind(py).clone().into_any(),
                self.retry.bind(py).clone(),
            ],
        )
        .expect("a tuple of four objects")
    }
}

/// `value` as an exact `str`: a subclass is copied (without calling any of its methods).
fn exact_str<'py>(value: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
    if value.is_exact_instance_of::<PyString>() {
        return Ok(value.clone());
    }
    // SAFETY: `value` is a live str; PyUnicode_FromObject returns a new reference or NULL.
    unsafe {
        Bound::from_owned_ptr_or_err(value.py(), pyo3::ffi::PyUnicode_FromObject(value.as_ptr()))
            .map(|object| object.cast_into_unchecked())
    }
}

/// `value` as an exact `int`: a subclass (`bool` included) is copied by `int.__int__`, which
/// calls none of the subclass's methods.
fn exact_int<'py>(value: &Bound<'py, PyInt>) -> PyResult<Bound<'py, PyInt>> {
    if value.is_exact_instance_of::<PyInt>() {
        return Ok(value.clone());
    }
    let py = value.py();
    Ok(py
        .get_type::<PyInt>()
        .getattr(intern!(py, "__int__"))?
        .call1((value,))?
        .cast_into()?)
}

/// `fastsse._json.loads`: orjson when installed, else `json`. Looked up on each call, which
/// costs a dict lookup, so that the choice stays in one Python module.
fn json_loads(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || py.import("fastsse._json").map(Bound::unbind))?;
    module.bind(py).getattr(intern!(py, "loads"))
}

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
        let object = pyo3::ffi::PyUnicode_DecodeUTF8(
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
    events: Vec<Bound<'py, Event>>,
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
            Some(retry) => retry_to_py(py, retry)?.unbind(),
            None => py.None(),
        };
        let object = Bound::new(
            py,
            Event {
                event: event_type.unbind(),
                data: data.unbind(),
                id: id.unbind(),
                retry,
            },
        )?;
        // PyO3 makes every pyclass a GC type, so the collector would traverse every event a
        // consumer holds, and a fresh event counts towards the next collection. An Event holds
        // only exact strs, ints and None (the parser makes them, the constructor copies
        // subclasses) and cannot be subclassed, so it can never be part of a reference cycle:
        // untrack it, as CPython does for tuples of atomic objects. (Events reused from the
        // free list are untracked already.)
        // SAFETY: `object` is a live GC object; untracking it only skips cycle detection.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) };
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
}

/// `retry:` values are exact up to this many digits: CPython's default limit for converting a
/// string to an int (~10**4300 ms, far past any use), or the process's own limit when it set a
/// lower one (`sys.set_int_max_str_digits`). Longer values saturate at the largest value of that
/// many digits, rather than raise or cost quadratic time for a hostile server's megabyte of
/// digits.
const RETRY_MAX_DIGITS: usize = 4300;

/// The lowest limit a process can set on int/str conversions
/// (`sys.int_info.str_digits_check_threshold`): values this short never look the limit up.
const INT_STR_DIGITS_THRESHOLD: usize = 640;

fn retry_to_py<'py>(py: Python<'py>, retry: &RetryMs) -> PyResult<Bound<'py, PyAny>> {
    // The FFI calls, unlike PyO3's infallible conversions, report a failed allocation as an
    // error, which then carries the chunk's events (see `PySink`) instead of panicking.
    if let Some(value) = retry.as_u64() {
        // SAFETY: returns a new reference, or NULL with an exception set.
        return unsafe {
            Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyLong_FromUnsignedLongLong(value))
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
            pyo3::ffi::PyLong_FromString(digits.as_ptr(), std::ptr::null_mut(), 10),
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

/// An incremental, spec-exact `text/event-stream` parser.
///
/// Sharing one between threads is safe: `feed` never releases the GIL and runs no Python code
/// while it holds the parser (the `EventTooLargeError` is built after), so concurrent calls run
/// one after the other, each on its whole chunk. Releasing the GIL for large chunks was measured
/// and rejected: with another Python thread busy, reacquiring it cost more than the parse.
/// The only way to reach a parser during a call on it is from a finaliser that a garbage
/// collection inside that call runs (CPython before 3.12): that gets [`busy_error`].
#[pyclass(module = "fastsse._fastsse", name = "Parser")]
pub struct Parser {
    core: CoreParser,
    skip_oversized: bool,
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
    // The text signature shows the default that None stands for (DEFAULT_MAX_EVENT_SIZE).
    #[new]
    #[pyo3(
        signature = (*, last_event_id = "", max_event_size = None, on_oversize = "error"),
        text_signature = "(*, last_event_id='', max_event_size=16777216, on_oversize='error')"
    )]
    fn new(
        py: Python<'_>,
        last_event_id: &str,
        max_event_size: Option<&Bound<'_, PyAny>>,
        on_oversize: &str,
    ) -> PyResult<Self> {
        let max_event_size = max_event_size
            .map(event_size_limit)
            .transpose()?
            .unwrap_or(DEFAULT_MAX_EVENT_SIZE);
        let skip_oversized = match on_oversize {
            "error" => false,
            "skip" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_oversize must be 'error' or 'skip', not {other:?}"
                )))
            }
        };
        Ok(Self {
            core: CoreParser::new()
                .with_max_event_size(max_event_size)
                .with_last_event_id(last_event_id),
            skip_oversized,
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
        let list = Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(items.len() as isize))?;
        for (index, item) in items.into_iter().enumerate() {
            pyo3::ffi::PyList_SetItem(list.as_ptr(), index as isize, item.into_ptr());
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
                "fastsse: the chunk was parsed whole; the {count} events it completed are in \\
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
            "an event exceeded max_event_size ({max_event_size} bytes); its bytes were \\
             discarded up to the blank line that ends it; the {} events this chunk completed \\
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

#[pymodule]
fn _fastsse(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Event>()?;
    module.add_class::<Parser>()?;
    module.add("DEFAULT_MAX_EVENT_SIZE", DEFAULT_MAX_EVENT_SIZE)?;
    module.add("RETRY_MAX_DIGITS", RETRY_MAX_DIGITS)?;
    Ok(())
}
