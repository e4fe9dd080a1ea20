//! Model files: safetensors with PyTorch-style tensor names, the model config, a format tag,
//! a version and a CRC-32 of all tensor bytes in the metadata. Loading verifies all of them.

use crate::adam::Adam;
use crate::error::{Error, Result};
use crate::model::{Model, State};
use crate::params::param_specs;
use crate::ModelConfig;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// Metadata key holding the format tag [`FORMAT`].
pub(crate) const KEY_FORMAT: &str = "lstmgen.format";
/// Metadata key holding the format version.
pub(crate) const KEY_VERSION: &str = "lstmgen.version";
/// Metadata key holding the model config as JSON.
pub(crate) const KEY_MODEL: &str = "lstmgen.model";
/// Metadata key holding the CRC-32 (hex) of all tensor bytes, tensors taken in name order.
pub(crate) const KEY_CRC: &str = "lstmgen.crc32";
pub(crate) const FORMAT: &str = "lstmgen";
pub(crate) const VERSION: &str = "1";

/// Metadata key holding the Adam step count when the file carries training state.
pub(crate) const KEY_STEP: &str = "lstmgen.step";

/// The tensors written for `model`: the parameters under their PyTorch names and, when
/// `with_training`, Adam's moments (`optim.m.<name>`, `optim.v.<name>`) and the carried hidden
/// state (`state.h_l{k}`, `state.c_l{k}`, `[batch, H]`).
fn named_tensors(model: &Model, with_training: bool) -> Vec<(String, Tensor)> {
    let specs = param_specs(model.config());
    let mut out: Vec<(String, Tensor)> = specs
        .iter()
        .map(|(n, _)| n.clone())
        .zip(model.params().iter().cloned())
        .collect();
    if with_training {
        let (m, v) = model.adam().moments();
        for ((name, _), (m, v)) in specs.iter().zip(m.iter().zip(v)) {
            out.push((format!("optim.m.{name}"), m.clone()));
            out.push((format!("optim.v.{name}"), v.clone()));
        }
        if let Some(st) = model.train_state() {
            for (k, (h, c)) in st.h.iter().zip(&st.c).enumerate() {
                out.push((format!("state.h_l{k}"), h.clone()));
                out.push((format!("state.c_l{k}"), c.clone()));
            }
        }
    }
    out
}

/// Serialises `model` with `extra` metadata (keys must not start with `lstmgen.`); with
/// `with_training`, also Adam's moments and step and the carried hidden state, so that training
/// can resume exactly. Returns the bytes of a complete safetensors file (tensors stored as F32).
pub fn to_safetensors(
    model: &Model,
    extra: &HashMap<String, String>,
    with_training: bool,
) -> Result<Vec<u8>> {
    let mut tensors = named_tensors(model, with_training);
    tensors.sort_by(|a, b| a.0.cmp(&b.0)); // the checksum covers the tensors in name order
    let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(tensors.len());
    let mut crc = crc32fast::Hasher::new();
    for (_, t) in &tensors {
        let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        crc.update(&b);
        bytes.push(b);
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    for (k, v) in extra {
        if k.starts_with("lstmgen.") {
            return Err(Error::Data(format!("metadata key {k:?} is reserved")));
        }
        meta.insert(k.clone(), v.clone());
    }
    meta.insert(KEY_FORMAT.into(), FORMAT.into());
    meta.insert(KEY_VERSION.into(), VERSION.into());
    meta.insert(
        KEY_MODEL.into(),
        serde_json::to_string(model.config()).map_err(|e| Error::Native(e.to_string()))?,
    );
    meta.insert(KEY_CRC.into(), format!("{:08x}", crc.finalize()));
    if with_training {
        meta.insert(KEY_STEP.into(), model.step().to_string());
    }
    let views = tensors
        .iter()
        .zip(bytes.iter())
        .map(|((name, t), b)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, t.dims().to_vec(), b)
                    .map_err(|e| Error::Native(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Native(format!("safetensors: {e}")))
}

/// A parsed and verified model file, as a ready model (with its Adam state and carried hidden
/// state when the file has them) and all of its metadata, including the `lstmgen.*` keys.
pub struct Loaded {
    pub model: Model,
    pub metadata: HashMap<String, String>,
}

/// Parses and verifies a file written by [`to_safetensors`]: header, format tag, version, config,
/// every expected tensor with its dtype and shape, and the CRC-32. Errors are `Error::ModelFile`.
pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<Loaded> {
    let bad = |msg: String| Error::ModelFile(msg);
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file or truncated ({e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get(KEY_FORMAT) {
        Some(f) if f == FORMAT => {}
        Some(other) => {
            return Err(bad(format!(
                "{KEY_FORMAT} is {other:?}, but this build reads {FORMAT:?}: the file comes from an incompatible lstmgen or another tool"
            )))
        }
        None => {
            return Err(bad(
                "this safetensors file was not written by lstmgen (no lstmgen.format metadata)"
                    .into(),
            ))
        }
    }
    match metadata.get(KEY_VERSION) {
        Some(v) if v == VERSION => {}
        other => {
            return Err(bad(format!(
                "unsupported lstmgen file version {other:?}; this build reads version {VERSION}"
            )))
        }
    }
    let config: ModelConfig =
        serde_json::from_str(metadata.get(KEY_MODEL).map(String::as_str).unwrap_or(""))
            .map_err(|e| bad(format!("model config metadata is missing or invalid ({e})")))?;
    config
        .validate()
        .map_err(|e| bad(format!("invalid model config in file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("corrupt or truncated tensor data ({e})")))?;
    let mut crc = crc32fast::Hasher::new();
    // Every tensor in the file is covered by the checksum, in name order.
    let mut names: Vec<String> = st.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    for n in &names {
        crc.update(
            st.tensor(n)
                .map_err(|e| bad(format!("tensor {n}: {e}")))?
                .data(),
        );
    }
    let want = metadata.get(KEY_CRC).cloned().unwrap_or_default();
    let got = format!("{:08x}", crc.finalize());
    if want != got {
        return Err(bad(format!(
            "checksum mismatch (file says {want:?}, data gives {got}): the file is corrupt"
        )));
    }
    let read = |name: &str, shape: &[usize]| read_f32(&st, name, shape, device);
    let specs = param_specs(&config);
    let params = specs
        .iter()
        .map(|(n, s)| read(n, s))
        .collect::<Result<Vec<_>>>()?;
    let mut model = Model::from_params(config, params, device.clone())?;
    if let Some(step) = metadata.get(KEY_STEP) {
        let step: u64 = step
            .parse()
            .map_err(|_| bad(format!("invalid {KEY_STEP} {step:?}")))?;
        let m = specs
            .iter()
            .map(|(n, s)| read(&format!("optim.m.{n}"), s))
            .collect::<Result<Vec<_>>>()?;
        let v = specs
            .iter()
            .map(|(n, s)| read(&format!("optim.v.{n}"), s))
            .collect::<Result<Vec<_>>>()?;
        let state = match st.tensor("state.h_l0") {
            Ok(h0) => {
                let shape = h0.shape().to_vec();
                let layers = 0..config.num_layers;
                Some(State {
                    h: layers
                        .clone()
                        .map(|k| read(&format!("state.h_l{k}"), &shape))
                        .collect::<Result<_>>()?,
                    c: layers
                        .map(|k| read(&format!("state.c_l{k}"), &shape))
                        .collect::<Result<_>>()?,
                })
            }
            Err(_) => None,
        };
        model.restore_training(Adam::restore(m, v, step), state);
    }
    Ok(Loaded { model, metadata })
}

/// Reads tensor `name`, which must be F32 of `shape` with only finite values, onto `device`;
/// `Error::ModelFile` otherwise (lstmgen never saves NaN or inf, so they mean damage or a diverged
/// import, which would otherwise give NaN losses and `<unk>`-only text).
fn read_f32(st: &SafeTensors, name: &str, shape: &[usize], device: &Device) -> Result<Tensor> {
    let view = st
        .tensor(name)
        .map_err(|_| Error::ModelFile(format!("tensor {name} is missing")))?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(Error::ModelFile(format!(
            "tensor {name} is {:?} {:?}, expected F32 {:?}",
            view.dtype(),
            view.shape(),
            shape
        )));
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::ModelFile(format!(
            "tensor {name} holds a non-finite value ({} at index {i}): the model is damaged or diverged",
            data[i]
        )));
    }
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// Imports a PyTorch state dict saved with `safetensors.torch.save_file` from a module with
/// `embedding = nn.Embedding(V, E)`, `lstm = nn.LSTM(E, H, num_layers=L)` and
/// `decoder = nn.Linear(H, V)` (float32). The shape is inferred from the tensors; dropout is 0.
pub fn from_state_dict(bytes: &[u8], device: &Device) -> Result<Model> {
    let bad = |msg: String| Error::ModelFile(msg);
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors file or truncated ({e})")))?;
    let shape = |name: &str| {
        st.tensor(name).map(|v| v.shape().to_vec()).map_err(|_| bad(format!("tensor {name} is missing: expected a state dict with embedding.*, lstm.* and decoder.* tensors")))
    };
    let emb = shape("embedding.weight")?;
    let hh = shape("lstm.weight_hh_l0")?;
    if emb.len() != 2 || hh.len() != 2 {
        return Err(bad(
            "embedding.weight and lstm.weight_hh_l0 must be 2-D".into()
        ));
    }
    let num_layers = (0..)
        .take_while(|k| st.tensor(&format!("lstm.weight_ih_l{k}")).is_ok())
        .count();
    let config = ModelConfig {
        vocab_size: emb[0],
        embedding_dim: emb[1],
        hidden_size: hh[1],
        num_layers,
        dropout: 0.0,
    };
    config
        .validate()
        .map_err(|e| bad(format!("unsupported shapes: {e}")))?;
    let params = param_specs(&config)
        .iter()
        .map(|(n, s)| read_f32(&st, n, s, device))
        .collect::<Result<Vec<_>>>()?;
    Model::from_params(config, params, device.clone())
}
