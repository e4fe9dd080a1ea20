//! Model files: safetensors with PyTorch-style tensor names, the model config, a format tag,
//! a version and a CRC-32 of all tensor bytes in the metadata. Loading verifies all of them.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::params::param_specs;
use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// Metadata key holding the format tag [`FORMAT`].
pub const KEY_FORMAT: &str = "lstmgen.format";
/// Metadata key holding the format version.
pub const KEY_VERSION: &str = "lstmgen.version";
/// Metadata key holding the model config as JSON.
pub const KEY_MODEL: &str = "lstmgen.model";
/// Metadata key holding the CRC-32 (hex) of all tensor bytes, in parameter order.
pub const KEY_CRC: &str = "lstmgen.crc32";
pub const FORMAT: &str = "lstmgen";
pub const VERSION: &str = "1";

/// Serialises `params` (in [`crate::params::Layout`] order) with `extra` metadata (keys must not
/// start with `lstmgen.`). Returns the bytes of a complete safetensors file.
pub fn to_safetensors(cfg: &ModelConfig, params: &[Tensor], extra: &HashMap<String, String>) -> Result<Vec<u8>> {
    let specs = param_specs(cfg);
    let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(params.len());
    let mut crc = crc32fast::Hasher::new();
    for p in params {
        let v = p.flatten_all()?.to_vec1::<f32>()?;
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        crc.update(&b);
        bytes.push(b);
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    for (k, v) in extra {
        if k.starts_with("lstmgen.") {
            return Err(Error::Input(format!("metadata key {k:?} is reserved")));
        }
        meta.insert(k.clone(), v.clone());
    }
    meta.insert(KEY_FORMAT.into(), FORMAT.into());
    meta.insert(KEY_VERSION.into(), VERSION.into());
    meta.insert(KEY_MODEL.into(), serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?);
    meta.insert(KEY_CRC.into(), format!("{:08x}", crc.finalize()));
    let views = specs
        .iter()
        .zip(bytes.iter())
        .map(|((name, shape), b)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| Error::Internal(e.to_string()))?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Internal(format!("safetensors: {e}")))
}

/// A parsed and verified model file.
pub struct Loaded {
    pub config: ModelConfig,
    pub params: Vec<Tensor>,
    /// All metadata, including the `lstmgen.*` keys.
    pub metadata: HashMap<String, String>,
}

/// Parses and verifies a file written by [`to_safetensors`]: header, format tag, version, config,
/// every expected tensor with its dtype and shape, and the CRC-32. Errors are `Error::ModelFile`.
pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<Loaded> {
    let bad = |msg: String| Error::ModelFile(msg);
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file or truncated ({e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get(KEY_FORMAT) {
        Some(f) if f == FORMAT => {}
        _ => return Err(bad("this safetensors file was not written by lstmgen (no lstmgen.format metadata)".into())),
    }
    match metadata.get(KEY_VERSION) {
        Some(v) if v == VERSION => {}
        other => return Err(bad(format!("unsupported lstmgen file version {other:?}; this build reads version {VERSION}"))),
    }
    let config: ModelConfig = serde_json::from_str(metadata.get(KEY_MODEL).map(String::as_str).unwrap_or(""))
        .map_err(|e| bad(format!("model config metadata is missing or invalid ({e})")))?;
    config.validate().map_err(|e| bad(format!("invalid model config in file: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("corrupt or truncated tensor data ({e})")))?;
    let mut crc = crc32fast::Hasher::new();
    let mut params = Vec::new();
    for (name, shape) in param_specs(&config) {
        let view = st.tensor(&name).map_err(|_| bad(format!("tensor {name} is missing")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
            return Err(bad(format!("tensor {name} is {:?} {:?}, expected F32 {:?}", view.dtype(), view.shape(), shape)));
        }
        crc.update(view.data());
        let data: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        params.push(Tensor::from_vec(data, shape, device)?);
    }
    let want = metadata.get(KEY_CRC).cloned().unwrap_or_default();
    let got = format!("{:08x}", crc.finalize());
    if want != got {
        return Err(bad(format!("checksum mismatch (file says {want:?}, data gives {got}): the file is corrupt")));
    }
    Ok(Loaded { config, params, metadata })
}
