//! `Event`: one Server-Sent Event, a Python type written against the C API.

use std::ffi::{c_int, c_uint, c_void, CStr};
use std::mem::size_of;

use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyTuple, PyType};

use super::capi::{c_call, immutable_type_flag};

/// One Server-Sent Event. Immutable; attribute names match httpx-sse's `ServerSentEvent`.
///
/// A Python type written against the C API rather than a `#[pyclass]`: an event is made for
/// every event of every stream, and PyO3's path (the base type's `tp_new`, a mutex-guarded
/// free list, GC tracking then untracking, per-field checks on release) cost about as much as
/// the event's data string. This one is a plain object of four references: allocated and freed
/// by pymalloc, outside the garbage collector, its fields read by Python as members.
///
/// Measured against `#[pyclass(frozen, get_all, freelist = 64)]` with the same fields (PyO3
/// 0.30, CPython 3.11, the LLM corpus in 16 KiB chunks), in instructions per event counted by
/// cachegrind: `Parser.feed` 1,903 here against 2,236 (+17%); with the events kept alive, as a
/// consumer that collects them does, 1,947 against 2,987 (+53%: the pyclass is GC-tracked and
/// triggers collections); `Event(...)` 1,934 against 2,242 (+16%); reading the four attributes
/// the same (960 against 971: both are member descriptors). httpx-sse takes 19,064. And PyO3
/// cannot make a pyclass an immutable type in the abi3-py39 build, which this type is from
/// Python 3.10 on.
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
pub(super) fn event_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
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
        flags: ffi::Py_TPFLAGS_DEFAULT as c_uint | immutable_type_flag(py),
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and everything it points to live for the rest of the process.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }
        .map(|ty| unsafe { ty.cast_into_unchecked::<PyType>() }.unbind())
}

/// A new Event of exact fields: `retry` is an exact int or None.
pub(super) fn new_event<'py>(
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
