//! The Python binding: `fastsse._fastsse`. Thin on purpose: it turns the core's borrowed
//! events into Python objects, one list per chunk, and does nothing the core could do.
//!
//! One module per Python type: [`event`] (`Event`), [`parser`] (`Parser`), [`batch_iterator`]
//! (`BatchIterator`); [`capi`] holds what the two types written against the C API share. PyO3
//! lives only here: the core (`crate::parser`, `crate::event`) is plain Rust.

mod batch_iterator;
mod capi;
mod event;
mod parser;

use pyo3::prelude::*;

use crate::DEFAULT_MAX_EVENT_SIZE;

use batch_iterator::batch_iterator_type;
use event::event_type;
use parser::{Parser, RETRY_MAX_DIGITS};

#[pymodule]
fn _fastsse(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("Event", event_type(module.py())?)?;
    module.add("BatchIterator", batch_iterator_type(module.py())?)?;
    module.add_class::<Parser>()?;
    module.add("DEFAULT_MAX_EVENT_SIZE", DEFAULT_MAX_EVENT_SIZE)?;
    module.add("RETRY_MAX_DIGITS", RETRY_MAX_DIGITS)?;
    Ok(())
}
