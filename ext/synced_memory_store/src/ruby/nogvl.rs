//! The one way this crate releases the GVL: around blocking waits (network,
//! joins, condition variables), never around an L1 lookup.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use magnus::{Error, Ruby};

struct Call<F, R> {
    func: Option<F>,
    result: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Call` that `nogvl` passed in, alive and exclusively
    // ours for the duration of this call.
    let call = unsafe { &mut *data.cast::<Call<F, R>>() };
    let func = call.func.take().expect("called once");
    // A panic must not unwind into Ruby's C frames: catch it here and report it
    // as a Ruby exception once the GVL is back.
    call.result = Some(catch_unwind(AssertUnwindSafe(func)));
    null_mut()
}

/// Runs `func` without the GVL, so other Ruby threads run meanwhile. `func` must
/// not touch Ruby objects. Keep it bounded in time: it cannot be interrupted.
pub(super) fn nogvl<F: FnOnce() -> R, R>(ruby: &Ruby, func: F) -> Result<R, Error> {
    let mut call = Call {
        func: Some(func),
        result: None,
    };
    // SAFETY: the trampoline only touches `call`, which outlives this call; no
    // unblocking function is registered, so Ruby never runs one concurrently.
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, R>),
            (&mut call as *mut Call<F, R>).cast(),
            None,
            null_mut(),
        );
    }
    match call.result.expect("the trampoline ran") {
        Ok(result) => Ok(result),
        Err(_) => Err(Error::new(
            ruby.exception_fatal(),
            "synced_memory_store: a native wait panicked",
        )),
    }
}
