"""Shared by the Python peers of the benchmark: the common command line, the data layout (the same as
lstmgen's ts/data.ts and bench/peers/common.mjs), peak memory and the one-JSON-line result."""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="one benchmark peer run; prints one JSON line")
    p.add_argument("--train", required=True, help="training token ids, little-endian uint32")
    p.add_argument("--val", required=True, help="validation token ids, little-endian uint32")
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--embedding", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps before them")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--gen-samples", type=int, default=64)
    p.add_argument("--gen-tokens", type=int, default=32)
    p.add_argument("--prompt", default="", help="prompt token ids, comma-separated")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--no-val", action="store_true", help="skip the validation pass")
    p.add_argument("--autocast", choices=["bf16"], default=None, help="torch only: CPU autocast to bfloat16")
    a = p.parse_args(argv)
    a.prompt = [int(x) for x in a.prompt.split(",") if x != ""]
    return a


def read_ids(path):
    return np.fromfile(path, dtype="<u4").astype(np.int64)


def batches(ids, batch, seq, drop_last):
    """Yield (inputs, targets, first) of shape [batch, T]: `batch` streams of floor((n-1)/batch) positions,
    batch k holding positions [k*seq, (k+1)*seq); `first` marks the start of a pass (reset the state)."""
    stream_len = (len(ids) - 1) // batch
    x = ids[: batch * stream_len].reshape(batch, stream_len)
    y = ids[1 : batch * stream_len + 1].reshape(batch, stream_len)
    count = stream_len // seq if drop_last else -(-stream_len // seq)
    for k in range(count):
        s = k * seq
        yield x[:, s : s + seq], y[:, s : s + seq], k == 0


def train_batches(ids, batch, seq):
    while True:
        yield from batches(ids, batch, seq, True)


def eval_batch_size(n, batch, seq):
    """Streams per evaluation batch: the training batch, lowered so each stream holds one full sequence."""
    return max(1, min(batch, (n - 1) // seq))


def timed_training(ids, a, step, log=True):
    """`warmup` untimed then `steps` timed calls of step(x, y, first) -> loss (nats/token). Also returns
    the wall time of every timed step (stepSeconds, seconds), from which the report draws the spread."""
    it = train_batches(ids, a.batch, a.seq)
    losses = []
    step_seconds = []
    eprint("BENCH train-start")
    t0 = time.perf_counter()
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        s0 = time.perf_counter()
        x, y, first = next(it)
        loss = float(step(x, y, first))
        if s >= a.warmup:
            step_seconds.append(time.perf_counter() - s0)
        losses.append(loss)
        if log:
            eprint(f"step {s + 1}/{a.warmup + a.steps} loss {loss:.4f}{' (warm-up)' if s < a.warmup else ''}")
    seconds = time.perf_counter() - t0
    tokens = a.steps * a.batch * a.seq
    return {
        "trainSteps": a.steps,
        "warmupSteps": a.warmup,
        "trainTokens": tokens,
        "trainSeconds": seconds,
        "trainTokensPerSec": tokens / seconds,
        "stepSeconds": step_seconds,
        "firstLoss": losses[0],
        "lastLoss": losses[-1],
    }


def sample_rows(logits, temperature, rng):
    """One token per row of `logits` [G, V] (numpy), from softmax(logits / temperature); argmax at 0."""
    if temperature == 0:
        return logits.argmax(axis=1)
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    c = np.cumsum(p, axis=1)
    u = rng.random((logits.shape[0], 1)) * c[:, -1:]
    return np.minimum((c < u).sum(axis=1), logits.shape[1] - 1)


def log_softmax_nll(logits, targets):
    """Summed cross-entropy (nats) of logits [..., V] against integer targets [...]."""
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    t = targets.reshape(-1)
    return float((lse - z[np.arange(len(t)), t]).sum())


def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def eprint(*args):
    print(*args, file=sys.stderr, flush=True)


def timed_generation(generate, a):
    """Calls generate(2) as a warm-up (for Keras it also traces both input shapes), then times
    generate(a.gen_tokens); returns the generation fields of a result (a.gen_samples per call)."""
    generate(2)
    g0 = time.perf_counter()
    generate(a.gen_tokens)
    seconds = time.perf_counter() - g0
    tokens = a.gen_samples * a.gen_tokens
    return dict(genTokens=tokens, genSeconds=seconds, genTokensPerSec=tokens / seconds)


def emit(result):
    result = dict(result, peakRssMiB=peak_rss_mib())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def skip(system, reason):
    sys.stdout.write(json.dumps({"system": system, "status": "skipped", "reason": reason}) + "\n")
    sys.stdout.flush()
    sys.exit(0)
