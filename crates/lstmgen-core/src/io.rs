//! Model files: safetensors with PyTorch-style tensor names, the model config, a format tag,
//! a version, the optimizer step count and a CRC-32 of the whole file's content in the metadata.
//! Loading verifies all of them.
//!
//! # The checksum (format version 2)
//!
//! `lstmgen.crc32` is the CRC-32 (hex) of one canonical byte stream made of, in this order:
//!
//! 1. every metadata entry except `lstmgen.crc32` itself, in ascending key order (bytewise): the
//!    key, then the value, each as its u64 little-endian byte length followed by its UTF-8 bytes;
//! 2. every tensor, in ascending name order: the name (length-prefixed, as above), the dtype
//!    (length-prefixed, as safetensors spells it: `"F32"`), the rank and each dimension (u64 LE),
//!    then the data's byte length (u64 LE) and the data.
//!
//! So it covers the weights, the config, the caller's metadata (the facade's vocabulary or
//! tokenizer and train config, a checkpoint's training state) and the format keys: an edited
//! token, a swapped pair of tokens or a renamed tensor is refused. The stream depends on the
//! decoded header only, not on its JSON layout or key order.
//!
//! Version 1 files (written before the metadata was covered) still load: their checksum covers
//! the tensors' data only (in name order), and that is what is verified for them; their
//! metadata is unprotected, and they carry no step count outside checkpoints.

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
/// Metadata key holding the CRC-32 (hex) of the file's content (see the module docs).
pub(crate) const KEY_CRC: &str = "lstmgen.crc32";
pub(crate) const FORMAT: &str = "lstmgen";
/// The format version written: 2, whose checksum covers the metadata as well as the tensors.
pub(crate) const VERSION: &str = "2";
/// The previous version, still read: its checksum covers the tensor data only.
const VERSION_TENSOR_CRC: &str = "1";

/// Metadata key holding Adam's step count (the steps its moments have seen) when the file
/// carries training state (a checkpoint).
pub(crate) const KEY_STEP: &str = "lstmgen.step";
/// Metadata key holding the optimizer steps the weights have had ([`Model::step`]), in every
/// file of version 2.
pub(crate) const KEY_STEPS: &str = "lstmgen.steps";
/// Metadata key holding NT-ASGD's trigger state ([`crate::asgd::Trigger`] as JSON) in a
/// checkpoint of a model trained with it.
pub(crate) const KEY_ASGD: &str = "lstmgen.asgd";

/// The CRC-32 of version 2 over `metadata` (all but [`KEY_CRC`]) and `tensors`
/// (`(name, dtype, shape, data)`, in any order); see the module docs for the byte stream.
fn content_crc<'a>(
    metadata: &HashMap<String, String>,
    tensors: impl IntoIterator<Item = (&'a str, &'a str, &'a [usize], &'a [u8])>,
) -> String {
    let mut crc = crc32fast::Hasher::new();
    let mut put = |b: &[u8], prefixed: bool| {
        if prefixed {
            crc.update(&(b.len() as u64).to_le_bytes());
        }
        crc.update(b);
    };
    let mut keys: Vec<&String> = metadata.keys().filter(|k| *k != KEY_CRC).collect();
    keys.sort();
    for k in keys {
        put(k.as_bytes(), true);
        put(metadata[k].as_bytes(), true);
    }
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, data) in tensors {
        put(name.as_bytes(), true);
        put(dtype.as_bytes(), true);
        put(&(shape.len() as u64).to_le_bytes(), false);
        for &d in shape {
            put(&(d as u64).to_le_bytes(), false);
        }
        put(data, true);
    }
    format!("{:08x}", crc.finalize())
}

/// The tensors written for `model`: the parameters under their PyTorch names and, when
/// `with_training`, Adam's moments (`optim.m.<name>`, `optim.v.<name>`), NT-ASGD's SGD iterates
/// while the parameters hold their average (`optim.live.<name>`) and the carried hidden state
/// (`state.h_l{k}` `[batch, out]`, `state.c_l{k}` `[batch, H]`).
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
        if let Some(live) = model.averaged_iterates() {
            for ((name, _), w) in specs.iter().zip(live) {
                out.push((format!("optim.live.{name}"), w.clone()));
            }
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
    let tensors = named_tensors(model, with_training);
    let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(tensors.len());
    for (_, t) in &tensors {
        let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        bytes.push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
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
    meta.insert(KEY_STEPS.into(), model.step().to_string());
    if with_training {
        meta.insert(KEY_STEP.into(), model.adam().step().to_string());
        let trigger = model.averaging();
        if *trigger != crate::asgd::Trigger::default() {
            meta.insert(
                KEY_ASGD.into(),
                serde_json::to_string(trigger).map_err(|e| Error::Native(e.to_string()))?,
            );
        }
    }
    let crc = content_crc(
        &meta,
        tensors
            .iter()
            .zip(&bytes)
            .map(|((name, t), b)| (name.as_str(), "F32", t.dims(), b.as_slice())),
    );
    meta.insert(KEY_CRC.into(), crc);
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
    let version = match metadata.get(KEY_VERSION).map(String::as_str) {
        Some(v @ (VERSION | VERSION_TENSOR_CRC)) => v,
        other => {
            return Err(bad(format!(
                "unsupported lstmgen file version {other:?}; this build reads versions {VERSION_TENSOR_CRC} and {VERSION}"
            )))
        }
    };
    let config: ModelConfig =
        serde_json::from_str(metadata.get(KEY_MODEL).map(String::as_str).unwrap_or(""))
            .map_err(|e| bad(format!("model config metadata is missing or invalid ({e})")))?;
    config
        .validate()
        .map_err(|e| bad(format!("invalid model config in file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("corrupt or truncated tensor data ({e})")))?;
    // Every tensor in the file is covered by the checksum (and in version 2 every metadata entry).
    let views = st.tensors();
    let got = if version == VERSION {
        let dtypes: Vec<String> = views
            .iter()
            .map(|(_, v)| format!("{:?}", v.dtype()))
            .collect();
        content_crc(
            &metadata,
            views
                .iter()
                .zip(&dtypes)
                .map(|((n, v), d)| (n.as_str(), d.as_str(), v.shape(), v.data())),
        )
    } else {
        let mut views: Vec<_> = views.iter().collect();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let mut crc = crc32fast::Hasher::new();
        for (_, v) in views {
            crc.update(v.data());
        }
        format!("{:08x}", crc.finalize())
    };
    let want = metadata.get(KEY_CRC).cloned().unwrap_or_default();
    if want != got {
        return Err(bad(format!(
            "checksum mismatch (file says {want:?}, its content gives {got}): the file is corrupt or was edited"
        )));
    }
    let read_u64 = |key: &str| -> Result<Option<u64>> {
        metadata
            .get(key)
            .map(|v| v.parse().map_err(|_| bad(format!("invalid {key} {v:?}"))))
            .transpose()
    };
    let steps = read_u64(KEY_STEPS)?;
    let read = |name: &str, shape: &[usize]| read_f32(&st, name, shape, device);
    let specs = param_specs(&config);
    let params = specs
        .iter()
        .map(|(n, s)| read(n, s))
        .collect::<Result<Vec<_>>>()?;
    let mut model = Model::from_params(config, params, device.clone())?;
    // Version 1 wrote no KEY_STEPS: its KEY_STEP (checkpoints only) was the whole count.
    let adam_step = read_u64(KEY_STEP)?;
    let steps = steps.or(adam_step).unwrap_or(0);
    if let Some(step) = adam_step {
        if step > steps {
            return Err(bad(format!(
                "{KEY_STEP} {step} exceeds {KEY_STEPS} {steps}: the file is inconsistent"
            )));
        }
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
                let batch = h0.shape().first().copied().unwrap_or(0);
                let layers = 0..config.num_layers;
                Some(State {
                    h: layers
                        .clone()
                        .map(|k| read(&format!("state.h_l{k}"), &[batch, config.out_size()]))
                        .collect::<Result<_>>()?,
                    c: layers
                        .map(|k| read(&format!("state.c_l{k}"), &[batch, config.hidden_size]))
                        .collect::<Result<_>>()?,
                })
            }
            Err(_) => None,
        };
        model.restore_training(Adam::restore(m, v, step), state);
        if let Some(json) = metadata.get(KEY_ASGD) {
            let trigger: crate::asgd::Trigger = serde_json::from_str(json)
                .map_err(|e| bad(format!("invalid {KEY_ASGD} {json:?} ({e})")))?;
            let live = if trigger.count > 0 {
                Some(
                    specs
                        .iter()
                        .map(|(n, s)| read(&format!("optim.live.{n}"), s))
                        .collect::<Result<Vec<_>>>()?,
                )
            } else {
                None
            };
            model.restore_averaging(trigger, live);
        }
    }
    model.set_steps(steps);
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
/// `embedding = nn.Embedding(V, E)`, `lstm = nn.LSTM(E, H, num_layers=L)` (optionally with
/// `proj_size=P`: then `lstm.weight_hr_l{k}` `[P, H]` and `decoder = nn.Linear(P, V)`) and
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
    let proj_size = match st.tensor("lstm.weight_hr_l0") {
        Ok(hr) => hr.shape().first().copied().unwrap_or(0),
        Err(_) => 0,
    };
    let config = ModelConfig {
        vocab_size: emb[0],
        embedding_dim: emb[1],
        hidden_size: hh[0] / 4, // weight_hh is [4H, out]
        num_layers,
        dropout: 0.0,
        proj_size,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let cfg = ModelConfig {
            vocab_size: 7,
            embedding_dim: 3,
            hidden_size: 4,
            num_layers: 1,
            dropout: 0.0,
            proj_size: 0,
        };
        Model::new(cfg, 1, Device::Cpu).unwrap()
    }

    /// `bytes` re-serialised with `edit` applied to its metadata (tensors unchanged).
    fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut HashMap<String, String>)) -> Vec<u8> {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        edit(&mut meta);
        let st = SafeTensors::deserialize(bytes).unwrap();
        safetensors::serialize(st.tensors(), Some(meta)).unwrap()
    }

    fn extra(vocab: &str) -> HashMap<String, String> {
        HashMap::from([("tokenizer".to_string(), vocab.to_string())])
    }

    #[test]
    fn the_checksum_covers_every_metadata_entry() {
        let m = model();
        let bytes = to_safetensors(&m, &extra(r#"["a","e","$"]"#), false).unwrap();
        assert!(from_safetensors(&bytes, &Device::Cpu).is_ok());
        let edits: [(&str, &str); 4] = [
            ("tokenizer", r#"["e","a","$"]"#), // two tokens swapped
            ("tokenizer", r#"["a","e","%"]"#), // one byte changed
            (KEY_STEPS, "9"),
            ("added", "x"),
        ];
        for (k, v) in edits {
            let edited = rewrite(&bytes, |meta| {
                meta.insert(k.into(), v.into());
            });
            let e = from_safetensors(&edited, &Device::Cpu).err().expect(k);
            assert!(
                matches!(&e, Error::ModelFile(msg) if msg.contains("checksum mismatch")),
                "{k}: {e}"
            );
        }
        let removed = rewrite(&bytes, |meta| {
            meta.remove("tokenizer");
        });
        assert!(from_safetensors(&removed, &Device::Cpu).is_err());
    }

    #[test]
    fn the_step_count_survives_a_plain_file_and_a_checkpoint() {
        let mut m = model();
        let opt = crate::AdamConfig::default();
        for k in 0..3 {
            m.train_step(&[1, 2, 3, 4], &[2, 3, 4, 5], 1, 4, &opt, k, None)
                .unwrap();
        }
        let plain = to_safetensors(&m, &HashMap::new(), false).unwrap();
        let mut loaded = from_safetensors(&plain, &Device::Cpu).unwrap().model;
        assert_eq!((loaded.step(), loaded.adam().step()), (3, 0)); // fresh moments
        loaded
            .train_step(&[1, 2, 3, 4], &[2, 3, 4, 5], 1, 4, &opt, 3, None)
            .unwrap();
        assert_eq!(loaded.step(), 4);
        let ckpt = to_safetensors(&loaded, &HashMap::new(), true).unwrap();
        let resumed = from_safetensors(&ckpt, &Device::Cpu).unwrap().model;
        assert_eq!((resumed.step(), resumed.adam().step()), (4, 1));
    }

    #[test]
    fn version_1_files_load_with_their_tensor_checksum() {
        let m = model();
        let v2 = to_safetensors(&m, &extra("[]"), true).unwrap();
        let st = SafeTensors::deserialize(&v2).unwrap();
        let mut views = st.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let mut crc = crc32fast::Hasher::new();
        for (_, v) in &views {
            crc.update(v.data());
        }
        let tensor_crc = format!("{:08x}", crc.finalize());
        let v1 = rewrite(&v2, |meta| {
            meta.insert(KEY_VERSION.into(), VERSION_TENSOR_CRC.into());
            meta.insert(KEY_CRC.into(), tensor_crc.clone());
            meta.remove(KEY_STEPS);
        });
        let loaded = from_safetensors(&v1, &Device::Cpu).unwrap();
        assert_eq!(loaded.metadata["tokenizer"], "[]");
        // A version-1 checksum is not accepted under version 2.
        let relabelled = rewrite(&v1, |meta| {
            meta.insert(KEY_VERSION.into(), VERSION.into());
        });
        assert!(from_safetensors(&relabelled, &Device::Cpu).is_err());
    }
}
