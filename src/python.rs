//! The Python binding: `fastsse._fastsse`. Thin on purpose: it turns the core's borrowed
//! events into Python objects, one list per chunk, and does nothing the core could do.

use std::ffi::{c_int, c_uint, c_void, CStr};
use std::mem::size_of;
use std::panic::AssertUnwindSafe;

use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
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
/// A Python type written against the C API rather than a `#[pyclass]`: an event is made for
/// every event of every stream, and PyO3's path (the base type's `tp_new`, a mutex-guarded
/// free list, GC tracking then untracking, per-field checks on release) cost about as much as
/// the event's data string. This one is a plain object of four references: allocated and freed
/// by pymalloc, outside the garbage collector, its fields read by Python as members.
///
/// Every field is an exact `str`, or an exact `int` or `None` for `retry` (the constructor
/// copies subclasses): objects that refer to nothing, so an Event can never be part of a
/// reference cycle, which is what makes leaving it out of the collector right. The type has no
/// `Py_TPFLAGS_BASETYPE`: it cannot be subclassed.
#[repr(C)]
struct EventObject {
    ob_base: ffi::PyObject,
    event: *mut ffi::PyObject,
    data: *mut ffi::PyObject,
    id: *mut ffi::PyObject,
    retry: *mut ffi::PyObject,
}

const EVENT_DOC: &CStr = c"Event(event=None, data=None, id=None, retry=None)\n--\n\n\
One Server-Sent Event; immutable. Attribute names match httpx-sse's ServerSentEvent.\n\n\
``event`` (str; None or \"\" means \"message\"), ``data`` and ``id`` (str; None means \"\"), \
``retry`` (the reconnection time in milliseconds: an int >= 0, or None). Wrong types raise \
TypeError, a negative retry ValueError.";

/// The `Event` type, made once per process.
fn event_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || create_event_type(py))
        .map(|ty| ty.bind(py))
}

fn create_event_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    fn member(name: &'static CStr, offset: usize) -> ffi::PyMemberDef {
        ffi::PyMemberDef {
            name: name.as_ptr(),
            type_code: ffi::Py_T_OBJECT_EX,
            offset: offset as ffi::Py_ssize_t,
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        }
    }
    fn method(
        name: &'static CStr,
        function: ffi::PyCFunction,
        doc: &'static CStr,
    ) -> ffi::PyMethodDef {
        ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: function,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: doc.as_ptr(),
        }
    }
    // The type keeps pointers to its methods, so they live as long as the process (made once).
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        method(
            c"json",
            event_json,
            c"The data decoded as JSON (orjson when installed, else json).",
        ),
        method(c"__reduce__", event_reduce, c"Pickle support."),
        ffi::PyMethodDef::zeroed(),
    ]));
    let members: &'static mut [ffi::PyMemberDef] = Box::leak(Box::new([
        member(c"event", std::mem::offset_of!(EventObject, event)),
        member(c"data", std::mem::offset_of!(EventObject, data)),
        member(c"id", std::mem::offset_of!(EventObject, id)),
        member(c"retry", std::mem::offset_of!(EventObject, retry)),
        ffi::PyMemberDef::default(),
    ]));
    let slot = |slot, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let slots: &'static mut [ffi::PyType_Slot] = Box::leak(Box::new([
        slot(ffi::Py_tp_new, event_new as *mut c_void),
        slot(ffi::Py_tp_dealloc, event_dealloc as *mut c_void),
        slot(ffi::Py_tp_richcompare, event_richcompare as *mut c_void),
        slot(ffi::Py_tp_hash, event_hash as *mut c_void),
        slot(ffi::Py_tp_repr, event_repr as *mut c_void),
        slot(ffi::Py_tp_doc, EVENT_DOC.as_ptr() as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(ffi::Py_tp_members, members.as_mut_ptr().cast()),
        slot(0, std::ptr::null_mut()),
    ]));
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"fastsse._fastsse.Event".as_ptr(),
        basicsize: std::mem::size_of::<EventObject>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and everything it points to live for the rest of the process.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }
        .map(|ty| unsafe { ty.cast_into_unchecked::<PyType>() }.unbind())
}

/// A new Event of exact fields: `retry` is an exact int or None.
fn new_event<'py>(
    py: Python<'py>,
    event: Bound<'py, PyString>,
    data: Bound<'py, PyString>,
    id: Bound<'py, PyString>,
    retry: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let ty = event_type(py)?;
    // SAFETY: a block of the type's basic size, initialised as an object of the type (which
    // takes a reference to the heap type), its fields then set to owned references; it is
    // released by `event_dealloc`, the type's only deallocator.
    unsafe {
        let object: *mut ffi::PyObject = ffi::PyObject_Malloc(size_of::<EventObject>()).cast();
        if object.is_null() {
            return Err(PyMemoryError::new_err(()));
        }
        ffi::PyObject_Init(object, ty.as_ptr().cast());
        let fields = object.cast::<EventObject>();
        (*fields).event = event.into_ptr();
        (*fields).data = data.into_ptr();
        (*fields).id = id.into_ptr();
        (*fields).retry = retry.into_ptr();
        Ok(Bound::from_owned_ptr(py, object))
    }
}

/// The fields of `object`, which must be an Event.
///
/// # Safety
/// `object` is a live Event and the caller is attached to the interpreter.
unsafe fn event_fields<'py>(
    py: Python<'py>,
    object: *mut ffi::PyObject,
) -> [Borrowed<'py, 'py, PyAny>; 4] {
    let fields = object.cast::<EventObject>();
    unsafe {
        [
            Borrowed::from_ptr(py, (*fields).event),
            Borrowed::from_ptr(py, (*fields).data),
            Borrowed::from_ptr(py, (*fields).id),
            Borrowed::from_ptr(py, (*fields).retry),
        ]
    }
}

fn fields_tuple<'py>(fields: [Borrowed<'py, 'py, PyAny>; 4]) -> PyResult<Bound<'py, PyTuple>> {
    let py = fields[0].py();
    PyTuple::new(py, fields.map(|field| field.to_owned()))
}

/// Runs the body of one of the type's C functions: the caller holds the GIL; an error becomes
/// the call's Python exception (a panic too, rather than unwinding into C), and the function
/// returns `on_error`.
fn c_call<R>(on_error: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: every caller is a slot or method of the type, which CPython calls with the GIL.
    let py = unsafe { Python::assume_attached() };
    match std::panic::catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            error.restore(py);
            on_error
        }
        Err(_) => {
            PyRuntimeError::new_err("fastsse: internal error (a panic) in Event").restore(py);
            on_error
        }
    }
}

unsafe extern "C" fn event_dealloc(object: *mut ffi::PyObject) {
    // SAFETY: `object` is an Event whose last reference is gone; its fields are owned
    // references; its type is a heap type, which each instance holds a reference to.
    unsafe {
        let fields = object.cast::<EventObject>();
        ffi::Py_DecRef((*fields).event);
        ffi::Py_DecRef((*fields).data);
        ffi::Py_DecRef((*fields).id);
        ffi::Py_DecRef((*fields).retry);
        let ty = ffi::Py_TYPE(object);
        ffi::PyObject_Free(object.cast());
        ffi::Py_DecRef(ty.cast());
    }
}

/// `Event(event=None, data=None, id=None, retry=None)`, like httpx-sse's `ServerSentEvent`: an
/// empty or missing `event` means "message".
unsafe extern "C" fn event_new(
    _subtype: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: CPython passes a tuple and a dict or NULL.
        let args = unsafe { Borrowed::from_ptr(py, args).cast_unchecked::<PyTuple>() };
        let kwargs = unsafe { Borrowed::from_ptr_or_opt(py, kwargs) }
            .map(|kwargs| unsafe { kwargs.cast_unchecked::<PyDict>() });
        const NAMES: [&str; 4] = ["event", "data", "id", "retry"];
        if args.len() > NAMES.len() {
            return Err(PyTypeError::new_err(format!(
                "Event() takes at most 4 arguments ({} given)",
                args.len()
            )));
        }
        let mut values: [Option<Bound<'_, PyAny>>; 4] = Default::default();
        for (index, value) in args.iter().enumerate() {
            values[index] = Some(value);
        }
        if let Some(kwargs) = kwargs {
            for (key, value) in kwargs.iter() {
                let name = key.extract::<String>().ok();
                let Some(index) = NAMES
                    .iter()
                    .position(|known| Some(*known) == name.as_deref())
                else {
                    return Err(PyTypeError::new_err(format!(
                        "Event() got an unexpected keyword argument {}",
                        key.repr()?
                    )));
                };
                if values[index].replace(value).is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "Event() got multiple values for argument '{}'",
                        NAMES[index]
                    )));
                }
            }
        }
        let [event, data, id, retry] = values.map(|value| value.filter(|value| !value.is_none()));
        let text = str_argument;
        let empty = || intern!(py, "").clone();
        let event = match text(event, "event")? {
            Some(event) if event.len()? > 0 => event,
            _ => intern!(py, "message").clone(),
        };
        let data = text(data, "data")?.unwrap_or_else(empty);
        let id = text(id, "id")?.unwrap_or_else(empty);
        let retry = match retry {
            None => py.None().into_bound(py),
            Some(retry) => match retry.cast::<PyInt>() {
                Ok(retry) if !retry.is_instance_of::<PyBool>() => {
                    // Compared once exact: a subclass's own `__lt__` is never called.
                    let retry = exact_int(retry)?;
                    if retry.lt(0)? {
                        return Err(PyValueError::new_err(format!(
                            "Event() argument 'retry' must be a number of milliseconds >= 0 \
                             or None, not {retry}"
                        )));
                    }
                    retry.into_any()
                }
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "Event() argument 'retry' must be int or None, not {}",
                        retry.get_type().name()?
                    )))
                }
            },
        };
        Ok(new_event(py, event, data, id, retry)?.into_ptr())
    })
}

/// An optional str argument of `Event()`, as an exact str.
fn str_argument<'py>(
    value: Option<Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Option<Bound<'py, PyString>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.cast::<PyString>() {
        Ok(text) => exact_str(text).map(Some),
        Err(_) => Err(PyTypeError::new_err(format!(
            "Event() argument '{name}' must be str or None, not {}",
            value.get_type().name()?
        ))),
    }
}

unsafe extern "C" fn event_json(
    object: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: a method of the type: `object` is an Event.
        let [_, data, _, _] = unsafe { event_fields(py, object) };
        Ok(json_loads(py)?.call1((data,))?.into_ptr())
    })
}

unsafe extern "C" fn event_reduce(
    object: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: a method of the type: `object` is an Event.
        let fields = fields_tuple(unsafe { event_fields(py, object) })?;
        Ok((event_type(py)?, fields).into_pyobject(py)?.into_ptr())
    })
}

/// `==` and `!=` between Events compare the four fields; anything else is NotImplemented.
unsafe extern "C" fn event_richcompare(
    object: *mut ffi::PyObject,
    other: *mut ffi::PyObject,
    op: c_int,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: CPython passes an Event and a live object.
        let other_is_event = unsafe { ffi::Py_TYPE(other) == ffi::Py_TYPE(object) };
        if !other_is_event || (op != ffi::Py_EQ && op != ffi::Py_NE) {
            return Ok(py.NotImplemented().into_ptr());
        }
        let mut equal = true;
        let fields = unsafe { event_fields(py, object) };
        let others = unsafe { event_fields(py, other) };
        for (field, other) in fields.iter().zip(others.iter()) {
            if !field.eq(other)? {
                equal = false;
                break;
            }
        }
        Ok(PyBool::new(py, equal == (op == ffi::Py_EQ))
            .to_owned()
            .into_ptr())
    })
}

unsafe extern "C" fn event_hash(object: *mut ffi::PyObject) -> ffi::Py_hash_t {
    c_call(-1, |py| {
        // SAFETY: a slot of the type: `object` is an Event.
        fields_tuple(unsafe { event_fields(py, object) })?.hash()
    })
}

unsafe extern "C" fn event_repr(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: a slot of the type: `object` is an Event.
        let [event, data, id, retry] = unsafe { event_fields(py, object) };
        let mut repr = format!(
            "Event(event={}, data={}, id={}",
            event.repr()?,
            data.repr()?,
            id.repr()?
        );
        if !retry.is_none() {
            repr.push_str(&format!(", retry={}", retry.str()?));
        }
        repr.push(')');
        Ok(PyString::new(py, &repr).into_ptr())
    })
}

/// `value` as an exact `str`: a subclass is copied (without calling any of its methods).
fn exact_str<'py>(value: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
    if value.is_exact_instance_of::<PyString>() {
        return Ok(value.clone());
    }
    // SAFETY: `value` is a live str; PyUnicode_FromObject returns a new reference or NULL.
    unsafe {
        Bound::from_owned_ptr_or_err(value.py(), ffi::PyUnicode_FromObject(value.as_ptr()))
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

// Sharing a parser between threads is safe: `feed` never releases the GIL and runs no Python
// code while it holds the parser (the `EventTooLargeError` is built after), so concurrent calls
// run one after the other, each on its whole chunk. Releasing the GIL for large chunks was
// measured and rejected: with another Python thread busy, reacquiring it cost more than the
// parse. The only way to reach a parser during a call on it is from a finaliser that a garbage
// collection inside that call runs (CPython before 3.12): that gets `busy_error`.
// The doc comment below is the class's docstring (help() shows it; _fastsse.pyi repeats it).
/// The arguments of `Parser()`, checked as the pure parser (`fastsse._pure`) checks them: the
/// same errors with the same messages.
struct ParserOptions {
    last_event_id: String,
    max_event_size: usize,
    skip_oversized: bool,
    comments: bool,
}

impl ParserOptions {
    fn from_kwargs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut options = Self {
            last_event_id: String::new(),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            skip_oversized: false,
            comments: false,
        };
        let Some(kwargs) = kwargs else {
            return Ok(options);
        };
        for (key, value) in kwargs.iter() {
            match key.extract::<String>()?.as_str() {
                "last_event_id" => options.last_event_id = resume_id(&value)?,
                "max_event_size" => options.max_event_size = event_size_limit(&value)?,
                "on_oversize" => options.skip_oversized = skips_oversized(&value)?,
                "comments" => {
                    options.comments = value
                        .cast::<PyBool>()
                        .map_err(|_| type_error("comments must be True or False", &value))?
                        .is_true()
                }
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
                          comments=False)"
    )]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = ParserOptions::from_kwargs(options)?;
        Ok(Self {
            core: CoreParser::new()
                .with_max_event_size(options.max_event_size)
                .with_last_event_id(&options.last_event_id)
                .with_comments(options.comments),
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

#[pymodule]
fn _fastsse(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("Event", event_type(module.py())?)?;
    module.add("BatchIterator", batch_iterator_type(module.py())?)?;
    module.add_class::<Parser>()?;
    module.add("DEFAULT_MAX_EVENT_SIZE", DEFAULT_MAX_EVENT_SIZE)?;
    module.add("RETRY_MAX_DIGITS", RETRY_MAX_DIGITS)?;
    Ok(())
}

/// `BatchIterator(batches)`: the items of an async iterator of lists, one by one.
///
/// The per-item step of an async generator (an `asend` object, a wrapped value, and a
/// `StopIteration` carrying the item) cost about as much as parsing the event it hands out.
/// Here, while a batch is buffered, `__anext__` returns the iterator itself as the awaitable,
/// and awaiting it completes at once with the next item: through `am_send` on Python 3.10 and
/// 3.11, which `await` calls there, without any exception; through `__next__` and a
/// `StopIteration` elsewhere. An item leaves the buffer only when the awaitable is awaited, so
/// an `__anext__()` that is never awaited loses nothing.
///
/// When the buffer is empty, `__anext__` returns the coroutine `_batch_iterator.refill`, which
/// awaits `batches.__anext__()` until a batch is not empty, buffers it and returns its first
/// item; the end of `batches` (StopAsyncIteration) and its errors reach the caller as they are.
#[repr(C)]
struct BatchIteratorObject {
    ob_base: ffi::PyObject,
    /// The async iterator of batches; NULL once closed.
    batches: *mut ffi::PyObject,
    /// The batch being handed out (a list), NULL when none is.
    batch: *mut ffi::PyObject,
    /// The index of the next item of `batch`.
    index: ffi::Py_ssize_t,
}

const BATCH_ITERATOR_DOC: &CStr = c"BatchIterator(batches, /)\n--\n\n\
The items of an async iterator of lists, one by one, each handed out without suspending while \
a list is buffered. aclose() ends the iteration and closes batches; the items still buffered \
stay for clear().";

/// `am_send`'s results (`PySendResult`), which PyO3 declares only for Python >= 3.10 builds.
const PYGEN_RETURN: c_int = 0;
const PYGEN_ERROR: c_int = -1;

fn batch_iterator_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || create_batch_iterator_type(py))
        .map(|ty| ty.bind(py))
}

fn create_batch_iterator_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    let method = |name: &'static CStr, function, flags, doc: &'static CStr| ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: function,
        },
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    };
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        method(
            c"aclose",
            batch_iterator_aclose,
            ffi::METH_NOARGS,
            c"End the iteration now (buffered items stay for clear()); the awaitable closes batches.",
        ),
        method(
            c"clear",
            batch_iterator_clear_buffer,
            ffi::METH_NOARGS,
            c"Remove and return the buffered items (those not handed out yet), as a list.",
        ),
        method(
            c"_load",
            batch_iterator_load,
            ffi::METH_O,
            c"Buffer a non-empty batch and return its first item (for refill).",
        ),
        ffi::PyMethodDef::zeroed(),
    ]));
    let getters: &'static mut [ffi::PyGetSetDef] = Box::leak(Box::new([
        ffi::PyGetSetDef {
            name: c"buffered".as_ptr(),
            get: Some(batch_iterator_buffered),
            set: None,
            doc: c"How many items are buffered: received, not handed out yet.".as_ptr(),
            closure: std::ptr::null_mut(),
        },
        ffi::PyGetSetDef::default(),
    ]));
    let slot = |slot, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let mut slots = vec![
        slot(ffi::Py_tp_new, batch_iterator_new as *mut c_void),
        slot(ffi::Py_tp_dealloc, batch_iterator_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, batch_iterator_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, batch_iterator_clear as *mut c_void),
        slot(ffi::Py_am_aiter, return_self as *mut c_void),
        slot(ffi::Py_am_anext, batch_iterator_anext as *mut c_void),
        slot(ffi::Py_am_await, return_self as *mut c_void),
        slot(ffi::Py_tp_iternext, batch_iterator_iternext as *mut c_void),
        slot(ffi::Py_tp_doc, BATCH_ITERATOR_DOC.as_ptr() as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(ffi::Py_tp_getset, getters.as_mut_ptr().cast()),
    ];
    // The slot exists from 3.10, where `await` calls it; 3.9 rejects a slot it does not know.
    if py.version_info() >= (3, 10) {
        slots.push(slot(ffi::Py_am_send, batch_iterator_send as *mut c_void));
    }
    slots.push(slot(0, std::ptr::null_mut()));
    let slots: &'static mut [ffi::PyType_Slot] = slots.leak();
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"fastsse._fastsse.BatchIterator".as_ptr(),
        basicsize: size_of::<BatchIteratorObject>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and everything it points to live for the rest of the process.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }
        .map(|ty| unsafe { ty.cast_into_unchecked::<PyType>() }.unbind())
}

/// `fastsse._io.batch_iterator.refill`: `__anext__` with nothing buffered.
static REFILL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `fastsse._io.batch_iterator.aclose`: `aclose()`.
static ACLOSE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `fastsse._io.batch_iterator.<name>`, looked up once: `refill` runs once per batch, which can
/// be once per event when a server flushes each event on its own.
fn batch_iterator_helper<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    let helper = cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("fastsse._io.batch_iterator")?
                .getattr(name)?
                .unbind(),
        )
    })?;
    Ok(helper.bind(py))
}

unsafe extern "C" fn batch_iterator_new(
    subtype: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: CPython passes a tuple and a dict or NULL.
        let args = unsafe { Borrowed::from_ptr(py, args).cast_unchecked::<PyTuple>() };
        let has_kwargs = !kwargs.is_null() && unsafe { ffi::PyDict_Size(kwargs) } > 0;
        if args.len() != 1 || has_kwargs {
            return Err(PyTypeError::new_err(
                "BatchIterator() takes one positional argument: an async iterator of lists",
            ));
        }
        let batches = args.get_item(0)?;
        // SAFETY: PyType_GenericAlloc returns a zeroed, GC-tracked object of the type (holding
        // a reference to it), or NULL with an exception set.
        let object =
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(subtype, 0)) }?;
        unsafe { (*object.as_ptr().cast::<BatchIteratorObject>()).batches = batches.into_ptr() };
        Ok(object.into_ptr())
    })
}

unsafe extern "C" fn batch_iterator_traverse(
    object: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: `object` is a BatchIterator; heap types' instances visit their type (3.9+).
    unsafe {
        let fields = object.cast::<BatchIteratorObject>();
        for reference in [
            ffi::Py_TYPE(object).cast::<ffi::PyObject>(),
            (*fields).batches,
            (*fields).batch,
        ] {
            if !reference.is_null() {
                let result = visit(reference, arg);
                if result != 0 {
                    return result;
                }
            }
        }
    }
    0
}

unsafe extern "C" fn batch_iterator_clear(object: *mut ffi::PyObject) -> c_int {
    // SAFETY: `object` is a BatchIterator; its fields are owned references or NULL.
    unsafe {
        let fields = object.cast::<BatchIteratorObject>();
        clear_field(&mut (*fields).batches);
        clear_field(&mut (*fields).batch);
    }
    0
}

/// `Py_CLEAR`: the field is NULL before the reference is released (which may run code).
///
/// # Safety
/// `field` holds an owned reference or NULL, and the caller is attached to the interpreter.
unsafe fn clear_field(field: &mut *mut ffi::PyObject) {
    let object = std::mem::replace(field, std::ptr::null_mut());
    unsafe { ffi::Py_XDECREF(object) };
}

unsafe extern "C" fn batch_iterator_dealloc(object: *mut ffi::PyObject) {
    // SAFETY: `object` is a BatchIterator whose last reference is gone, allocated by
    // PyType_GenericAlloc for a GC heap type, which each instance holds a reference to.
    unsafe {
        ffi::PyObject_GC_UnTrack(object.cast());
        batch_iterator_clear(object);
        let ty = ffi::Py_TYPE(object);
        ffi::PyObject_GC_Del(object.cast());
        ffi::Py_DecRef(ty.cast());
    }
}

/// `Py_NewRef`, which the limited API has only from 3.10.
///
/// # Safety
/// `object` is live and the caller is attached to the interpreter.
unsafe fn new_ref(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::Py_IncRef(object) };
    object
}

unsafe extern "C" fn return_self(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live object.
    unsafe { new_ref(object) }
}

/// `__anext__`: the iterator itself while an item is buffered or once closed (awaiting it
/// then ends the iteration), else the coroutine that fetches the next batch.
unsafe extern "C" fn batch_iterator_anext(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a slot of the type: `object` is a BatchIterator.
    let fields = object.cast::<BatchIteratorObject>();
    let (batch, batches) = unsafe { ((*fields).batch, (*fields).batches) };
    if !batch.is_null() || batches.is_null() {
        return unsafe { new_ref(object) };
    }
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: both are live: `object` is the caller's, `batches` ours.
        let (this, batches) = unsafe {
            (
                Borrowed::from_ptr(py, object),
                Borrowed::from_ptr(py, batches),
            )
        };
        Ok(batch_iterator_helper(py, &REFILL, "refill")?
            .call1((this, batches))?
            .into_ptr())
    })
}

/// The next buffered item (a new reference), or NULL with an exception set: StopAsyncIteration
/// once closed (whatever is buffered), a RuntimeError for an awaitable awaited after the buffer
/// it was made for ran out.
///
/// # Safety
/// `object` is a BatchIterator and the caller is attached to the interpreter.
unsafe fn batch_iterator_take(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        let fields = object.cast::<BatchIteratorObject>();
        if (*fields).batches.is_null() {
            // Closed: the items still buffered stay for clear().
            ffi::PyErr_SetNone(ffi::PyExc_StopAsyncIteration);
            return std::ptr::null_mut();
        }
        let batch = (*fields).batch;
        if !batch.is_null() {
            // The list is ours, but its producer may still hold and change it: read it checked.
            let length = ffi::PyList_Size(batch);
            let index = (*fields).index;
            let item = if index < length {
                new_ref(ffi::PyList_GetItem(batch, index))
            } else {
                std::ptr::null_mut()
            };
            (*fields).index = index + 1;
            if index + 1 >= length {
                clear_field(&mut (*fields).batch);
            }
            if !item.is_null() {
                return item;
            }
        }
        ffi::PyErr_SetString(
            ffi::PyExc_RuntimeError,
            c"BatchIterator: an awaitable from __anext__() was awaited after the items \
              buffered when it was made had run out; await each __anext__() before the next"
                .as_ptr(),
        );
        std::ptr::null_mut()
    }
}

/// Awaiting the iterator, on Python >= 3.10: the item is the result, no exception is made.
unsafe extern "C" fn batch_iterator_send(
    object: *mut ffi::PyObject,
    _value: *mut ffi::PyObject,
    result: *mut *mut ffi::PyObject,
) -> c_int {
    // SAFETY: a slot of the type: `object` is a BatchIterator, `result` writable.
    unsafe {
        let item = batch_iterator_take(object);
        *result = item;
        if item.is_null() {
            PYGEN_ERROR
        } else {
            PYGEN_RETURN
        }
    }
}

/// Awaiting the iterator where `am_send` is not used (Python 3.9, and 3.12 on, whose `await`
/// calls `__next__`): the item leaves in a StopIteration. (From 3.12 raising one makes an
/// exception object, the larger part of the hand-off there; reusing one would mean writing
/// into CPython's private layout of the exception, which no API allows.)
unsafe extern "C" fn batch_iterator_iternext(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a slot of the type: `object` is a BatchIterator.
    let item = unsafe { batch_iterator_take(object) };
    if item.is_null() {
        return item;
    }
    c_call(std::ptr::null_mut(), |py| {
        // SAFETY: `item` is a new reference.
        let item = unsafe { Bound::from_owned_ptr(py, item) };
        // A tuple or an exception given to PyErr_SetObject would be taken as the arguments or
        // the exception itself, not as the value: those are wrapped first.
        // SAFETY: `item` is a live object.
        let is_exception = unsafe { ffi::PyExceptionInstance_Check(item.as_ptr()) } != 0;
        let value = if item.is_instance_of::<PyTuple>() || is_exception {
            py.get_type::<pyo3::exceptions::PyStopIteration>()
                .call1((item,))?
        } else {
            item
        };
        // SAFETY: sets the current exception; takes its own references.
        unsafe { ffi::PyErr_SetObject(ffi::PyExc_StopIteration, value.as_ptr()) };
        Ok(std::ptr::null_mut())
    })
}

/// `_load(batch)`: buffers a non-empty list and returns its first item (called by `refill`).
unsafe extern "C" fn batch_iterator_load(
    object: *mut ffi::PyObject,
    batch: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        let fields = object.cast::<BatchIteratorObject>();
        // SAFETY: a method of the type: `object` is a BatchIterator; `batch` is live.
        let batch = unsafe { Borrowed::from_ptr(py, batch) };
        // Copied first: iterating a batch that is not a list runs Python code.
        let list = match batch.cast::<PyList>() {
            Ok(list) => list.to_owned(),
            Err(_) => PyList::new(py, batch.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
        };
        if list.is_empty() {
            return Err(PyValueError::new_err(
                "BatchIterator: _load() takes a non-empty batch",
            ));
        }
        if unsafe { !(*fields).batch.is_null() } {
            return Err(PyRuntimeError::new_err(
                "BatchIterator: a batch arrived while another was buffered",
            ));
        }
        unsafe {
            (*fields).index = 0;
            (*fields).batch = list.into_ptr();
        }
        // SAFETY: `object` is a BatchIterator with a buffered item. Closed while the batch was
        // on its way (aclose() from another task), it keeps the batch for clear() and raises
        // StopAsyncIteration.
        Ok(unsafe { batch_iterator_take(object) })
    })
}

/// The buffered items' range in `batch`: (batch or NULL, first index, end).
///
/// # Safety
/// `object` is a BatchIterator and the caller is attached to the interpreter.
unsafe fn batch_iterator_rest(
    object: *mut ffi::PyObject,
) -> (*mut ffi::PyObject, ffi::Py_ssize_t, ffi::Py_ssize_t) {
    unsafe {
        let fields = object.cast::<BatchIteratorObject>();
        let batch = (*fields).batch;
        if batch.is_null() {
            return (batch, 0, 0);
        }
        let end = ffi::PyList_Size(batch);
        (batch, (*fields).index.min(end), end)
    }
}

unsafe extern "C" fn batch_iterator_buffered(
    object: *mut ffi::PyObject,
    _closure: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: a getter of the type: `object` is a BatchIterator.
    let (_, start, end) = unsafe { batch_iterator_rest(object) };
    unsafe { ffi::PyLong_FromSsize_t(end - start) }
}

/// `clear()`: the buffered items, removed (what a stream closed mid-batch keeps or drops).
unsafe extern "C" fn batch_iterator_clear_buffer(
    object: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: a method of the type: `object` is a BatchIterator; its batch a list or NULL.
    unsafe {
        let (batch, start, end) = batch_iterator_rest(object);
        let rest = if batch.is_null() {
            ffi::PyList_New(0)
        } else {
            ffi::PyList_GetSlice(batch, start, end)
        };
        if !rest.is_null() {
            clear_field(&mut (*object.cast::<BatchIteratorObject>()).batch);
        }
        rest
    }
}

/// `aclose()`: ends the iteration at once (nothing more is handed out, whoever awaits); the
/// items still buffered stay for `clear()`, so that closing an iteration loses nothing (a stream
/// iterated again after a `break` and an `aclose()` goes on with them). The coroutine it
/// returns closes `batches`.
unsafe extern "C" fn batch_iterator_aclose(
    object: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    c_call(std::ptr::null_mut(), |py| {
        let fields = object.cast::<BatchIteratorObject>();
        // SAFETY: a method of the type: `object` is a BatchIterator; the fields are owned
        // references or NULL, taken out here.
        let batches = unsafe {
            let batches = std::mem::replace(&mut (*fields).batches, std::ptr::null_mut());
            Bound::from_owned_ptr_or_opt(py, batches).unwrap_or_else(|| py.None().into_bound(py))
        };
        Ok(batch_iterator_helper(py, &ACLOSE, "aclose")?
            .call1((batches,))?
            .into_ptr())
    })
}
