//! The Python binding: `fastsse._fastsse`. Thin on purpose: it turns the core's borrowed
//! events into Python objects, one list per chunk, and does nothing the core could do.

use pyo3::exceptions::{PyTypeError, PyUnicodeDecodeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyList, PyMemoryView, PyString, PyTuple, PyType,
};

use crate::event::{decode, RawEventRef};
use crate::parser::bytes_eq;
use crate::{EventRef, EventSink, Parser as CoreParser, RetryMs, DEFAULT_MAX_EVENT_SIZE};

/// One Server-Sent Event. Immutable; attribute names match httpx-sse's `ServerSentEvent`.
// A chunk's events are usually freed together, just before the next chunk's are made: a free
// list lets those reuse the memory. 2048 covers a 16 KiB chunk of the smallest events.
#[pyclass(frozen, freelist = 2048, module = "fastsse._fastsse", name = "Event")]
pub struct Event {
    #[pyo3(get)]
    event: Py<PyString>,
    #[pyo3(get)]
    data: Py<PyString>,
    #[pyo3(get)]
    id: Py<PyString>,
    #[pyo3(get)]
    retry: Option<Py<PyInt>>,
}

#[pymethods]
impl Event {
    /// Like httpx-sse's `ServerSentEvent`: an empty or missing `event` means "message".
    #[new]
    #[pyo3(signature = (event = None, data = None, id = None, retry = None))]
    fn new(
        py: Python<'_>,
        event: Option<Bound<'_, PyString>>,
        data: Option<Bound<'_, PyString>>,
        id: Option<Bound<'_, PyString>>,
        retry: Option<Bound<'_, PyInt>>,
    ) -> PyResult<Self> {
        let empty = || PyString::new(py, "").unbind();
        let event = match event {
            Some(event) if event.is_truthy()? => event.unbind(),
            _ => intern!(py, "message").clone().unbind(),
        };
        Ok(Self {
            event,
            data: data.map_or_else(empty, Bound::unbind),
            id: id.map_or_else(empty, Bound::unbind),
            retry: retry.map(Bound::unbind),
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
        if let Some(retry) = &self.retry {
            repr.push_str(&format!(", retry={retry}"));
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
        let retry = self.retry.as_ref().map(|retry| retry.bind(py).clone());
        PyTuple::new(
            py,
            [
                self.event.bind(py).clone().into_any(),
                self.data.bind(py).clone().into_any(),
                self.id.bind(py).clone().into_any(),
                retry.map_or_else(|| py.None().into_bound(py), Bound::into_any),
            ],
        )
        .expect("a tuple of four objects")
    }
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
    fn get<'py>(&mut self, py: Python<'py>, id: &str, version: u64) -> Bound<'py, PyString> {
        match &self.object {
            Some(object) if self.version == version => object.bind(py).clone(),
            _ => {
                let object = PyString::new(py, id);
                self.version = version;
                self.object = Some(object.clone().unbind());
                object
            }
        }
    }
}

/// A Python `str` from UTF-8 that may be invalid, with U+FFFD for invalid sequences.
///
/// CPython validates while it copies, so valid input (the usual case) is read once instead of
/// being validated by Rust first. Invalid input is decoded by the core's own lossy decoder, so
/// the replacement characters are exactly the Rust parser's.
fn decode_to_py<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe `bytes`, a slice of at most isize::MAX bytes.
    let object = unsafe {
        pyo3::ffi::PyUnicode_FromStringAndSize(bytes.as_ptr().cast(), bytes.len() as isize)
    };
    if !object.is_null() {
        // SAFETY: a non-null result is a new reference to a str.
        return Ok(unsafe { Bound::from_owned_ptr(py, object).cast_into_unchecked() });
    }
    let error = PyErr::fetch(py);
    if error.is_instance_of::<PyUnicodeDecodeError>(py) {
        Ok(PyString::new(py, &decode(bytes)))
    } else {
        Err(error)
    }
}

/// Builds the Python events of one chunk.
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
        let retry = retry.map(|retry| retry_to_py(py, retry)).transpose()?;
        let object = Bound::new(
            py,
            Event {
                event: event_type.unbind(),
                data: data.unbind(),
                id: id.unbind(),
                retry: retry.map(Bound::unbind),
            },
        )?;
        // PyO3 makes every pyclass a GC type, so the collector would traverse every event a
        // consumer holds, and a fresh event counts towards the next collection. An Event only
        // holds strs and ints and cannot be subclassed, so it can never be part of a reference
        // cycle: untrack it, as CPython does for tuples of atomic objects. (Events reused from
        // the free list are untracked already.)
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
        if self.error.is_none() {
            let data = PyString::new(self.py, event.data);
            let id = PyString::new(self.py, event.id);
            let result = self.make(event.event.as_bytes(), data, id, event.retry);
            self.keep_first_error(result);
        }
    }

    /// The parser's path: the data go to CPython undecoded (see [`decode_to_py`]).
    fn on_raw_event(&mut self, event: RawEventRef<'_>) {
        if self.error.is_none() {
            let id = self.ids.get(self.py, event.id, event.id_version);
            let result = decode_to_py(self.py, event.data)
                .and_then(|data| self.make(event.event, data, id, event.retry));
            self.keep_first_error(result);
        }
    }
}

/// `retry:` values are exact up to this many digits: CPython's default limit for converting a
/// string to an int (~10**4300 ms, far past any use). Longer values saturate at the largest
/// such value, rather than cost quadratic time for a hostile server's megabyte of digits.
const RETRY_MAX_DIGITS: usize = 4300;

fn retry_to_py<'py>(py: Python<'py>, retry: &RetryMs) -> PyResult<Bound<'py, PyInt>> {
    static SATURATED: PyOnceLock<Py<PyInt>> = PyOnceLock::new();
    if let Some(value) = retry.as_u64() {
        return Ok(value.into_pyobject(py)?);
    }
    let digits = if retry.digits().len() <= RETRY_MAX_DIGITS {
        retry.digits()
    } else {
        let saturated = SATURATED.get_or_try_init(py, || {
            let nines = "9".repeat(RETRY_MAX_DIGITS);
            Ok::<_, PyErr>(
                py.get_type::<PyInt>()
                    .call1((nines,))?
                    .cast_into::<PyInt>()?
                    .unbind(),
            )
        })?;
        return Ok(saturated.bind(py).clone());
    };
    // Past u64: Python's int holds it exactly, as the spec asks.
    Ok(py.get_type::<PyInt>().call1((digits,))?.cast_into()?)
}

/// `max_event_size` as a positive `usize`, with a clear error for anything else.
fn event_size_limit(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        let kind = value.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "max_event_size must be an int, not {kind}"
        )));
    }
    match value.extract::<usize>() {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(PyValueError::new_err(format!(
            "max_event_size must be a positive number of bytes that fits in memory, not {value}"
        ))),
    }
}

/// An incremental, spec-exact `text/event-stream` parser.
#[pyclass(module = "fastsse._fastsse", name = "Parser")]
pub struct Parser {
    core: CoreParser,
    skip_oversized: bool,
    event_types: RepeatCache,
    ids: IdCache,
}

#[pymethods]
impl Parser {
    #[new]
    #[pyo3(signature = (*, last_event_id = "", max_event_size = None, on_oversize = "error"))]
    fn new(
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
        })
    }

    /// Parses a chunk of the stream and returns the events it completes.
    fn feed<'py>(&mut self, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = data.py();
        if let Ok(bytes) = data.cast::<PyBytes>() {
            return self.feed_bytes(py, bytes.as_bytes());
        }
        // A bytearray or memoryview could change while events are built, so parse a snapshot.
        let snapshot = if let Ok(array) = data.cast::<PyByteArray>() {
            array.to_vec()
        } else if data.is_instance_of::<PyMemoryView>() {
            data.call_method0(intern!(py, "tobytes"))?
                .cast_into::<PyBytes>()?
                .as_bytes()
                .to_vec()
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
        self.feed_bytes(py, &snapshot)
    }

    /// Ends the stream: an unterminated event is discarded (as the spec says) and the parser
    /// is ready for a new connection, keeping `last_event_id` and `retry`.
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyList> {
        self.core.finish();
        PyList::empty(py)
    }

    #[getter]
    fn last_event_id(&self) -> &str {
        self.core.last_event_id()
    }

    #[getter]
    fn retry<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyInt>>> {
        self.core
            .retry()
            .map(|retry| retry_to_py(py, retry))
            .transpose()
    }

    /// Whether an event has begun (a field or part of a line arrived) and not yet ended.
    #[getter]
    fn pending(&self) -> bool {
        self.core.pending()
    }

    #[getter]
    fn oversized(&self) -> u64 {
        self.core.oversized()
    }

    #[getter]
    fn max_event_size(&self) -> usize {
        self.core.max_event_size()
    }
}

impl Parser {
    fn feed_bytes<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let oversized_before = self.core.oversized();
        let mut sink = PySink {
            py,
            event_types: &mut self.event_types,
            ids: &mut self.ids,
            events: Vec::new(),
            error: None,
        };
        self.core.feed(chunk, &mut sink);
        if let Some(error) = sink.error {
            return Err(error);
        }
        let events = PyList::new(py, sink.events)?;
        let discarded = self.core.oversized() - oversized_before;
        if discarded == 0 || self.skip_oversized {
            return Ok(events);
        }
        Err(self.too_large_error(py, events, discarded))
    }

    fn too_large_error(&self, py: Python<'_>, events: Bound<'_, PyList>, discarded: u64) -> PyErr {
        static ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        let build = || -> PyResult<PyErr> {
            let class = ERROR.import(py, "fastsse._errors", "EventTooLargeError")?;
            let message = format!(
                "an event exceeded max_event_size ({} bytes); its bytes were discarded up to the \
                 blank line that ends it; the {} events this chunk completed are in .events",
                self.core.max_event_size(),
                events.len()
            );
            let kwargs = PyDict::new(py);
            kwargs.set_item("events", events)?;
            kwargs.set_item("max_event_size", self.core.max_event_size())?;
            kwargs.set_item("discarded", discarded)?;
            Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
        };
        build().unwrap_or_else(|error| error)
    }
}

#[pymodule]
fn _fastsse(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Event>()?;
    module.add_class::<Parser>()?;
    module.add("DEFAULT_MAX_EVENT_SIZE", DEFAULT_MAX_EVENT_SIZE)?;
    module.add("RETRY_MAX_DIGITS", RETRY_MAX_DIGITS)?;
    Ok(())
}
