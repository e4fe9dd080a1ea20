"""PyTorch baseline of scripts/gpu/check.sh: nn.Embedding + nn.LSTM (cuDNN) + nn.Linear, cross-entropy, Adam,
f32, truncated BPTT with the state carried (detached) between batches; the same shapes as check.mjs.

    python3 check-torch.py train --config keras|large --out b.json [--seconds 20]
    python3 check-torch.py generate --out c.json [--samples 256 --tokens 256]

Exits 3 with one line when no CUDA GPU is usable (or torch is missing).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

CONFIGS = {
    "keras": dict(vocabSize=10000, embeddingDim=256, hiddenSize=1024, numLayers=1, batchSize=64, seqLen=35),
    "char": dict(vocabSize=65, embeddingDim=64, hiddenSize=512, numLayers=2, batchSize=64, seqLen=128),
    "large": dict(vocabSize=10000, embeddingDim=512, hiddenSize=2048, numLayers=2, batchSize=256, seqLen=35),
}


def no_gpu(why):
    print(f"gpu-check: a GPU is needed from here on: {why}", file=sys.stderr)
    sys.exit(3)


try:
    import torch
    from torch import nn
except Exception as e:  # noqa: BLE001
    no_gpu(f"PyTorch is not importable: {e}")


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embedding = nn.Embedding(c["vocabSize"], c["embeddingDim"])
        self.lstm = nn.LSTM(c["embeddingDim"], c["hiddenSize"], c["numLayers"], batch_first=True)
        self.decoder = nn.Linear(c["hiddenSize"], c["vocabSize"])

    def forward(self, x, state=None):
        h, state = self.lstm(self.embedding(x), state)
        return self.decoder(h), state


class MemWatch:
    """Peak memory of this process per nvidia-smi (comparable with lstmgen's number), sampled every 50 ms."""

    def __init__(self):
        self.peak = None
        try:
            self.p = subprocess.Popen(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits", "-lms", "50"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.p = None
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            parts = [x.strip() for x in line.split(",")]
            if len(parts) == 2 and parts[0] == str(os.getpid()) and parts[1].isdigit():
                self.peak = max(self.peak or 0, int(parts[1]))

    def stop(self):
        time.sleep(0.2)
        if self.p:
            self.p.kill()
        return self.peak


def device():
    if not torch.cuda.is_available():
        no_gpu(f"torch {torch.__version__} sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 like lstmgen
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda")


def train(args):
    dev = device()
    name, c = args.config, CONFIGS[args.config]
    watch = MemWatch()
    torch.manual_seed(1)
    model = LM(c).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    B, T, V = c["batchSize"], c["seqLen"], c["vocabSize"]
    batches = [(torch.randint(V, (B, T), device=dev), torch.randint(V, (B, T), device=dev)) for _ in range(8)]
    state = None

    def step(i):
        nonlocal state
        x, y = batches[i % 8]
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = loss_fn(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()  # read back every step, as lstmgen does

    for i in range(3):
        step(i)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    steps, t0, elapsed, loss = 0, time.perf_counter(), 0.0, 0.0
    while (steps < 10 or elapsed < args.seconds) and steps < 2000:
        loss = step(steps + 3)
        steps += 1
        elapsed = time.perf_counter() - t0
    return dict(kind="train", impl=f"PyTorch {torch.__version__} nn.LSTM (cuDNN)", config=name, shape=c,
                device=torch.cuda.get_device_name(0), steps=steps, seconds=elapsed, tokensPerSec=steps * B * T / elapsed,
                lastLoss=loss, peakMiB=watch.stop(), torchPeakMiB=torch.cuda.max_memory_allocated() / 2**20)


@torch.no_grad()
def generate(args):
    dev = device()
    c = CONFIGS["keras"]
    watch = MemWatch()
    torch.manual_seed(1)
    model = LM(c).to(dev).eval()
    gen = torch.Generator(device=dev).manual_seed(3)

    def run(n):
        x = torch.ones(args.samples, 1, dtype=torch.long, device=dev)
        state, out = None, []
        for _ in range(n):
            logits, state = model(x, state)
            probs = torch.softmax(logits[:, -1], dim=-1)
            x = torch.multinomial(probs, 1, generator=gen)
            out.append(x)
        return torch.cat(out, 1).cpu()

    run(8)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    ids = run(args.tokens)
    sec = time.perf_counter() - t0
    return dict(kind="generate", impl=f"PyTorch {torch.__version__} nn.LSTM (cuDNN)", config="keras", samples=args.samples,
                tokens=args.tokens, device=torch.cuda.get_device_name(0), seconds=sec, tokensPerSec=ids.numel() / sec,
                peakMiB=watch.stop(), torchPeakMiB=torch.cuda.max_memory_allocated() / 2**20)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["train", "generate"])
    p.add_argument("--config", default="keras", choices=list(CONFIGS))
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--out")
    args = p.parse_args()
    r = train(args) if args.cmd == "train" else generate(args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(r, f, indent=1)
    print(f"gpu-check: {r['impl']} {r['kind']} {r['config']}: {r['tokensPerSec']:.0f} tokens/s", file=sys.stderr)


if __name__ == "__main__":
    main()
