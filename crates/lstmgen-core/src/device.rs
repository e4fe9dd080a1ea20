//! Device selection: `"cpu"`, `"cuda"` (errors when unusable) or `"auto"` (CUDA if usable, else CPU).

use crate::error::{Error, Result};
use candle_core::Device;

/// Resolves a device name. `"cuda"` without CUDA support or a usable GPU returns `Error::Device`
/// explaining why; `"auto"` falls back to the CPU silently.
pub fn select(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(),
        "auto" => Ok(cuda().unwrap_or(Device::Cpu)),
        other => Err(Error::Data(format!(
            "device must be \"auto\", \"cpu\" or \"cuda\", got {other:?}"
        ))),
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    Device::new_cuda(0).map_err(|e| {
        // candle appends a backtrace when RUST_BACKTRACE is set: keep the message line only.
        let msg = e.to_string();
        Error::Device(format!(
            "CUDA device 0 is not usable: {}",
            msg.lines().next().unwrap_or_default()
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(Error::Device(
        "this lstmgen binary was built without CUDA support (CPU build)".into(),
    ))
}

/// A short human-readable name of a device, e.g. `cpu` or `cuda:0`.
pub fn name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda:0".into(),
        Device::Metal(_) => "metal".into(),
    }
}
