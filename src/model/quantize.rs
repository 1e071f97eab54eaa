//! Quantize a float16/float32 ggml whisper file, the way whisper.cpp's own
//! `quantize` tool does: every 2-D tensor except the conv biases and the
//! positional embeddings is quantized; 1-D tensors and the 3-D conv weights
//! are copied unchanged. The quantization itself is ggml's
//! `ggml_quantize_chunk`.

use std::path::Path;

use whisper_rs::whisper_rs_sys as sys;

use super::ggml::{
    validate, GgmlInfo, GgmlReader, GgmlWriter, Preamble, TensorType, QNT_VERSION,
    QNT_VERSION_FACTOR,
};
use super::{write_atomically, ModelError};

/// 2-D tensors whisper.cpp needs in float32 whatever the model type.
const KEEP_UNQUANTIZED: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// The quantization types offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    Q8_0,
    Q5_1,
    Q5_0,
    Q4_0,
}

impl QuantType {
    pub const ALL: [QuantType; 4] = [
        QuantType::Q8_0,
        QuantType::Q5_1,
        QuantType::Q5_0,
        QuantType::Q4_0,
    ];

    fn ggml_type(self) -> sys::ggml_type {
        match self {
            QuantType::Q8_0 => sys::ggml_type_GGML_TYPE_Q8_0,
            QuantType::Q5_1 => sys::ggml_type_GGML_TYPE_Q5_1,
            QuantType::Q5_0 => sys::ggml_type_GGML_TYPE_Q5_0,
            QuantType::Q4_0 => sys::ggml_type_GGML_TYPE_Q4_0,
        }
    }

    /// The `ftype` field of a file of this type, quantization version included.
    pub fn file_ftype(self) -> i32 {
        let ftype = match self {
            QuantType::Q8_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0,
            QuantType::Q5_1 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1,
            QuantType::Q5_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_0,
            QuantType::Q4_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_0,
        };
        QNT_VERSION * QNT_VERSION_FACTOR + ftype
    }

    /// The lowercase name ("q5_1"), as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "q8_0",
            QuantType::Q5_1 => "q5_1",
            QuantType::Q5_0 => "q5_0",
            QuantType::Q4_0 => "q4_0",
        }
    }
}

impl std::str::FromStr for QuantType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        QuantType::ALL
            .into_iter()
            .find(|q| q.name() == text)
            .ok_or_else(|| format!("unknown quantization type {text:?} (q8_0, q5_1, q5_0, q4_0)"))
    }
}

impl std::fmt::Display for QuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Quantizes the float16 or float32 ggml whisper file `input` to `qtype`,
/// writing `output` atomically, then validates the result. The input is
/// validated first. Not real-time safe.
pub fn quantize(input: &Path, output: &Path, qtype: QuantType) -> Result<GgmlInfo, ModelError> {
    validate(input)?;
    let (mut reader, preamble) = GgmlReader::open(input)?;
    let source_type = preamble.hparams.weight_type();
    if source_type != Some(TensorType::F16) && source_type != Some(TensorType::F32) {
        return Err(ModelError::Quantize {
            path: input.to_path_buf(),
            reason: format!(
                "input is already {}; quantize a float16 or float32 model",
                source_type.map_or("?", TensorType::name)
            ),
        });
    }
    let target = TensorType::from_raw(qtype.ggml_type() as i32).expect("ggml knows its types");
    // SAFETY: plain query on a valid type.
    if unsafe { sys::ggml_quantize_requires_imatrix(target.raw()) } {
        return Err(ModelError::Quantize {
            path: input.to_path_buf(),
            reason: format!("{} needs an importance matrix", qtype.name()),
        });
    }
    let mut hparams = preamble.hparams;
    hparams.ftype = qtype.file_ftype();
    let preamble = Preamble {
        hparams,
        ..preamble
    };

    write_atomically(output, |out| {
        let mut writer = GgmlWriter { out, path: output };
        writer.preamble(&preamble)?;
        while let Some(t) = reader.next_tensor()? {
            let data = reader.read_data(&t)?;
            let quantize = t.ne.len() == 2 && !KEEP_UNQUANTIZED.contains(&t.name.as_str());
            if !quantize {
                writer.tensor(&t.name, &t.ne, t.ttype, &data)?;
                continue;
            }
            let row = t.ne[0];
            if row % target.block_elements() != 0 {
                return Err(ModelError::Quantize {
                    path: input.to_path_buf(),
                    reason: format!(
                        "tensor {:?} rows of {row} do not split into {}-element {} blocks",
                        t.name,
                        target.block_elements(),
                        qtype.name()
                    ),
                });
            }
            let values = to_f32(&data, t.ttype);
            let rows = values.len() / row;
            let size = target.data_bytes(&t.ne).expect("rows checked above") as usize;
            let mut quantized = vec![0u8; size];
            // SAFETY: `values` holds rows x row floats and `quantized` the exact
            // byte size ggml computes for that many rows of `target`; no
            // importance matrix is needed (checked above).
            let written = unsafe {
                sys::ggml_quantize_chunk(
                    target.raw(),
                    values.as_ptr(),
                    quantized.as_mut_ptr().cast(),
                    0,
                    rows as i64,
                    row as i64,
                    std::ptr::null(),
                )
            };
            assert_eq!(
                written, size,
                "ggml wrote an unexpected size for {}",
                t.name
            );
            writer.tensor(&t.name, &t.ne, target, &quantized)?;
        }
        Ok(())
    })?;
    validate(output)
}

fn to_f32(data: &[u8], ttype: TensorType) -> Vec<f32> {
    if ttype == TensorType::F32 {
        return data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
    // Copy into u16-aligned storage, then let ggml widen the row (fast even
    // in unoptimised builds). ggml files are little-endian, like the host.
    let n = data.len() / 2;
    let mut halves = vec![0u16; n];
    let mut values = vec![0f32; n];
    // SAFETY: `halves` has room for exactly `data.len()` bytes; the row
    // conversion reads n halves and writes n floats into buffers of that size.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), halves.as_mut_ptr().cast(), n * 2);
        sys::ggml_fp16_to_fp32_row(halves.as_ptr(), values.as_mut_ptr(), n as i64);
    }
    values
}
