//! `BatchIterator`: the items of an async iterator of lists, one by one.

use std::ffi::{c_int, c_uint, c_void, CStr};
use std::mem::size_of;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple, PyType};

use super::capi::{c_call, immutable_type_flag, new_ref};

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

pub(super) fn batch_iterator_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
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
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as c_uint
            | immutable_type_flag(py),
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
