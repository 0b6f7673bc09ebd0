//! What the types written against the C API (`Event`, `BatchIterator`) share.

use std::ffi::c_uint;
use std::panic::AssertUnwindSafe;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;

/// Runs the body of one of the types' C functions: the caller holds the GIL; an error becomes
/// the call's Python exception (a panic too, rather than unwinding into C), and the function
/// returns `on_error`.
pub(super) fn c_call<R>(on_error: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: every caller is a slot or method of a type, which CPython calls with the GIL.
    let py = unsafe { Python::assume_attached() };
    match std::panic::catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            error.restore(py);
            on_error
        }
        Err(_) => {
            PyRuntimeError::new_err("fastsse: internal error (a panic) in fastsse._fastsse")
                .restore(py);
            on_error
        }
    }
}

/// `Py_TPFLAGS_IMMUTABLETYPE` where the interpreter has it (3.10 on; PyO3 declares it only for
/// builds for 3.10 and later), else nothing: a type's attributes then cannot be set or deleted,
/// as for built-in types (`Event.json = ...` raises TypeError). The whole type is in its spec,
/// so nothing needs setting after it is made. On 3.9, whose heap types are always mutable, the
/// bit means nothing and is left out.
pub(super) fn immutable_type_flag(py: Python<'_>) -> c_uint {
    if py.version_info() >= (3, 10) {
        1 << 8
    } else {
        0
    }
}

/// `Py_NewRef`, which the limited API has only from 3.10.
///
/// # Safety
/// `object` is live and the caller is attached to the interpreter.
pub(super) unsafe fn new_ref(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::Py_IncRef(object) };
    object
}
