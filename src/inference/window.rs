//! The live model: the same weights, with whisper's two windows shortened to
//! what live passes use.
//!
//! whisper.cpp sizes a decoding state from the model file's header: the
//! cross-attention and padding caches for `n_audio_ctx` encoder frames (30 s)
//! and the self-attention cache for `n_text_ctx` tokens, and it zeroes all
//! three when the state is created, so every page is resident whether a pass
//! uses it or not. Live pieces are at most
//! [`StreamConfig::max_piece`](super::stream::StreamConfig) (12 s) long, so a
//! live pass never asks for more than [`LIVE_AUDIO_CTX`] frames (their
//! encoder window is fitted to the audio, [`super::engine::audio_ctx_for`]),
//! nor for more than a few dozen tokens. A copy of the file whose header
//! says so, with the two positional embeddings cut to the same lengths
//! (their first rows are the same vectors either way), gives whisper.cpp
//! caches and compute buffers of that size.
//!
//! The copy is written to an anonymous in-memory file (`memfd_create`) that
//! whisper.cpp reads like any other and that is gone once the model is
//! loaded: nothing is written to disk, nothing can go stale, and its pages
//! are never mapped into hark (so never in its RSS).
//!
//! Not real-time safe.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};

use crate::model::ggml::{GgmlReader, GgmlWriter, Hparams};
use crate::model::ModelError;

/// Encoder frames a live model holds: 15.36 s, above the 12 s longest piece
/// plus the encoder margin. Also whisper.cpp's smallest fitted window
/// ([`super::engine`]'s `AUDIO_CTX_MIN`), so no live pass is narrower than
/// it would be with the full model.
pub const LIVE_AUDIO_CTX: i32 = 768;
/// Tokens a live model holds: whisper.cpp decodes at most half of them
/// (124) per window and a 12 s piece is well under 100 with timestamps.
pub const LIVE_TEXT_CTX: i32 = 256;

const ENCODER_POSITIONS: &str = "encoder.positional_embedding";
const DECODER_POSITIONS: &str = "decoder.positional_embedding";

/// The live copy of the (already validated) model at `path`, as an open
/// in-memory file and the path whisper.cpp can open it by. The file lives
/// as long as the returned handle.
pub fn live_copy(path: &Path) -> Result<(File, PathBuf), ModelError> {
    let (mut reader, mut preamble) = GgmlReader::open(path)?;
    let full = preamble.hparams;
    preamble.hparams = shortened(&full);
    let (file, fd_path) = memory_file(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    {
        let mut writer = GgmlWriter {
            out: &mut out,
            path,
        };
        writer.preamble(&preamble)?;
        while let Some(tensor) = reader.next_tensor()? {
            let data = reader.read_data(&tensor)?;
            let keep = match tensor.name.as_str() {
                ENCODER_POSITIONS => Some(preamble.hparams.n_audio_ctx as usize),
                DECODER_POSITIONS => Some(preamble.hparams.n_text_ctx as usize),
                _ => None,
            };
            match keep {
                // `ne` is innermost first: [state, positions]; rows are contiguous.
                Some(rows) if tensor.ne.len() == 2 && tensor.ne[1] >= rows => {
                    let row_bytes = data.len() / tensor.ne[1];
                    let ne = [tensor.ne[0], rows];
                    writer.tensor(&tensor.name, &ne, tensor.ttype, &data[..row_bytes * rows])?;
                }
                _ => writer.tensor(&tensor.name, &tensor.ne, tensor.ttype, &data)?,
            }
        }
    }
    out.flush().map_err(|e| ModelError::io(path, e))?;
    drop(out);
    (&file).rewind().map_err(|e| ModelError::io(path, e))?;
    Ok((file, fd_path))
}

/// The header of the live copy: windows no longer than the file's own.
fn shortened(full: &Hparams) -> Hparams {
    let mut live = *full;
    live.n_audio_ctx = full.n_audio_ctx.min(LIVE_AUDIO_CTX);
    live.n_text_ctx = full.n_text_ctx.min(LIVE_TEXT_CTX);
    live
}

/// An anonymous in-memory file and its `/proc/self/fd` path.
fn memory_file(model: &Path) -> Result<(File, PathBuf), ModelError> {
    // SAFETY: the name is a valid C string; the returned descriptor, when
    // valid, is owned by the File built from it and by nothing else.
    let fd = unsafe { libc::memfd_create(c"hark-live-model".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(ModelError::io(model, std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor this function owns.
    let file = unsafe { File::from_raw_fd(fd) };
    Ok((file, PathBuf::from(format!("/proc/self/fd/{fd}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_never_lengthens_a_window() {
        let full = Hparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
            ftype: 7,
        };
        let live = shortened(&full);
        assert_eq!((live.n_audio_ctx, live.n_text_ctx), (768, 256));
        let tiny = Hparams {
            n_audio_ctx: 500,
            n_text_ctx: 100,
            ..full
        };
        let live = shortened(&tiny);
        assert_eq!((live.n_audio_ctx, live.n_text_ctx), (500, 100));
    }
}
