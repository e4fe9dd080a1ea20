//! The addon's one error boundary: engine errors and caught panics become JS errors whose `code`
//! is the engine's [`Error::code`](lstmgen_core::Error::code) and whose message is the engine's,
//! with no prefix (the contract is in the crate docs).
//!
//! How the code reaches JS: napi-rs creates a JS error with `napi_create_error(code, message)`
//! from a `napi::Error<S>`, taking `code` from `S: AsRef<str>`. A sync `#[napi]` method that
//! returns `napi::Result<T, Code>` therefore throws with our code. An `AsyncTask`'s `compute()`
//! cannot: it must return `napi::Result<_, Status>`, and `Status` is a closed enum, so the code
//! would arrive as `"GenericFailure"`. The tasks therefore carry the engine's `Result` out of
//! `compute()` as their output, and [`Engine`]'s `resolve()`, which runs on the JS thread, builds
//! the JS error there with our code and rejects the promise with that very object (napi-rs
//! rejects with a JS value held by the returned `napi::Error` as it is).

use lstmgen_core::Error as CoreError;
use napi::bindgen_prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The `code` of a JS error thrown by the addon: one of the engine's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// What the `#[napi]` functions return: their errors carry a [`Code`].
pub type Result<T> = napi::Result<T, Code>;

/// The JS-side form of an engine error.
pub fn to_js(e: CoreError) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

/// Runs `f`, turning a panic into an `Error::Native`, so a Rust panic never takes the Node process
/// down.
pub fn catch<T>(f: impl FnOnce() -> lstmgen_core::Result<T>) -> lstmgen_core::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(CoreError::Native(format!(
            "panic in the native engine: {msg}"
        )))
    })
}

/// Runs `f` for a sync method: [`catch`], then [`to_js`].
pub fn guard<T>(f: impl FnOnce() -> lstmgen_core::Result<T>) -> Result<T> {
    catch(f).map_err(to_js)
}

/// Work for the libuv thread pool whose errors keep their [`Code`]: wrap it in [`Engine`] to get
/// a napi [`Task`].
pub trait EngineTask: Send + Sized {
    type Output: Send + 'static;
    type JsValue: ToNapiValue + TypeName;
    /// Runs on the pool (panics are caught).
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output>;
    /// Converts the output on the JS thread.
    fn resolve(&mut self, output: Self::Output) -> Self::JsValue;
}

/// The napi [`Task`] of an [`EngineTask`].
pub struct Engine<T>(pub T);

impl<T: EngineTask> Task for Engine<T> {
    type Output = lstmgen_core::Result<T::Output>;
    type JsValue = T::JsValue;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(catch(|| self.0.compute()))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        match output {
            Ok(v) => Ok(self.0.resolve(v)),
            // A napi::Error made from a JS value rejects the promise with that value.
            Err(e) => Err(napi::Error::from(JsError::from(to_js(e)).into_unknown(env))),
        }
    }
}
