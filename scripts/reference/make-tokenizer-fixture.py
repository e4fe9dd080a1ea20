#!/usr/bin/env python3
"""Make the Hugging Face tokenizer.json fixture and the ids Python's `tokenizers` gives for it.

Regenerate (from the repo root; a virtual environment outside the repo):
    python3 -m venv "${TMPDIR:-/tmp}/tok-ref"
    "${TMPDIR:-/tmp}/tok-ref/bin/pip" install tokenizers==0.23.3
    "${TMPDIR:-/tmp}/tok-ref/bin/python" scripts/reference/make-tokenizer-fixture.py

Run `node scripts/reference/make-lstmgen-bpe.mjs` first (after `npm run build`): it writes
test/fixtures/lstmgen-bpe/tokenizer.json, a BPE trained by lstmgen, whose ids this script adds.

Writes test/fixtures/hf-bpe/tokenizer.json (a byte-level BPE of 400 tokens trained here, as a user of
the Python package would, with <|endoftext|> as a special token), test/fixtures/hf-wordpiece/tokenizer.json
(a lower-casing WordPiece with [UNK] and no <|endoftext|>) and test/fixtures/hf-ids.json: for each
tokenizer and each text, the ids `Tokenizer.encode(text, add_special_tokens=False).ids` gives with `encode_special_tokens = True`
(lstmgen encodes the text of special tokens as ordinary text).
test/tokenizer-fixture.test.ts checks that lstmgen loads both files and encodes the same ids.
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "test", "fixtures")

TRAIN = [
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse,",
    "and nothing particular to interest me on shore, I thought I would sail about a little and see the",
    "watery part of the world. It is a way I have of driving off the spleen and regulating the circulation.",
    "Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul;",
    "Café, naïve, 東京, مرحبا, 👍🏽 and 1234567890 — numbers, punctuation!? (brackets) [more] {braces}",
] * 20

TEXTS = [
    "Call me Ishmael.",
    "  leading spaces, trailing spaces  ",
    "CRLF\r\nline\ttab\u0000nul",
    "Café naïve 東京 مرحبا 👍🏽👩‍🚀 e\u0301",
    "It's what we'll do; they've gone, I'm sure, you'd say.",
    "unseen words: zygomorphic quixotry 999 <|endoftext|>",
]


def byte_level_bpe():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAIN, trainer=trainer)
    return tok


def wordpiece():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(TRAIN, trainer=trainer)
    return tok


def main():
    ids = {}
    for name, tok in (("hf-bpe", byte_level_bpe()), ("hf-wordpiece", wordpiece())):
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        tok.save(os.path.join(OUT, name, "tokenizer.json"))
        # lstmgen reads special-token text as ordinary text (the boundary only comes from corpus framing)
        tok.encode_special_tokens = True
        ids[name] = [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]
    # a tokenizer.json lstmgen wrote loads here and encodes the same ids (Split without look-ahead, ByteLevel)
    lstmgen = Tokenizer.from_file(os.path.join(OUT, "lstmgen-bpe", "tokenizer.json"))
    lstmgen.encode_special_tokens = True
    ids["lstmgen-bpe"] = [lstmgen.encode(t, add_special_tokens=False).ids for t in TEXTS]
    with open(os.path.join(OUT, "hf-ids.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"texts": TEXTS}, ensure_ascii=False)[:-1] + ',\n "ids": {\n')
        f.write(",\n".join(f"  {json.dumps(k)}: [\n" + ",\n".join(f"   {json.dumps(v)}" for v in vs) + "\n  ]" for k, vs in ids.items()))
        f.write("\n }\n}\n")


if __name__ == "__main__":
    main()
