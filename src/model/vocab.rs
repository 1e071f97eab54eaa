//! The byte strings of Whisper's text tokens, read from a Hugging Face
//! `tokenizer.json` (byte-level BPE).
//!
//! whisper.cpp stores the ordinary tokens only (ids below `<|endoftext|>`),
//! as raw bytes in id order; it derives the special tokens itself.

use std::collections::HashMap;
use std::path::Path;

use super::ModelError;

/// The token that ends the ordinary vocabulary.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// GPT-2's byte-level BPE writes each byte as a printable character; this is
/// the inverse table (character -> byte).
fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut table = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0u32..256 {
        let c = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        let c = char::from_u32(c).expect("code points below 0x200 are valid");
        table.insert(c, b as u8);
    }
    table
}

/// The ordinary tokens of `tokenizer.json` as bytes, index = token id.
/// Not real-time safe.
pub fn read_tokens(path: &Path) -> Result<Vec<Vec<u8>>, ModelError> {
    let invalid = |reason: String| ModelError::Ct2Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = super::read_capped(path, MAX_TOKENIZER_BYTES, "a Whisper tokenizer.json")?;
    let text = String::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    tokens_from_json(&text).map_err(invalid)
}

/// Largest `tokenizer.json` read (Whisper's are about 2 MB).
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;
/// Most ordinary tokens accepted: the id of `<|endoftext|>` (50256 in every
/// Whisper vocabulary) may be no higher, nor above the vocabulary's size.
pub const MAX_ORDINARY_TOKENS: usize = 60_000;

/// The ordinary tokens of a `tokenizer.json` text, index = token id; the
/// error says what is wrong. Nothing is sized from the file before it is
/// checked against the vocabulary it holds.
pub fn tokens_from_json(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let vocab = json
        .pointer("/model/vocab")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| "no model.vocab object (not a BPE tokenizer)".to_string())?;
    let end_of_text = vocab
        .get(END_OF_TEXT)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("model.vocab has no {END_OF_TEXT} token"))?;
    if end_of_text > vocab.len() as u64 || end_of_text > MAX_ORDINARY_TOKENS as u64 {
        return Err(format!(
            "{END_OF_TEXT} has id {end_of_text}, beyond the {} tokens of model.vocab \
             (at most {MAX_ORDINARY_TOKENS})",
            vocab.len()
        ));
    }
    let end_of_text = end_of_text as usize;

    let to_byte = unicode_to_byte();
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; end_of_text];
    for (text, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| format!("token {text:?} has a non-integer id"))?;
        if id >= end_of_text as u64 {
            continue;
        }
        let id = id as usize;
        let bytes = text
            .chars()
            .map(|c| to_byte.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| format!("token {text:?} is not byte-level BPE"))?;
        if tokens[id].replace(bytes).is_some() {
            return Err(format!("token id {id} appears twice"));
        }
    }
    tokens
        .into_iter()
        .enumerate()
        .map(|(id, token)| token.ok_or_else(|| format!("token id {id} is missing")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_with_gpt2_anchors() {
        let table = unicode_to_byte();
        assert_eq!(table.len(), 256);
        // GPT-2 writes a space as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A).
        assert_eq!(table[&'Ġ'], b' ');
        assert_eq!(table[&'Ċ'], b'\n');
        assert_eq!(table[&'a'], b'a');
    }
}
