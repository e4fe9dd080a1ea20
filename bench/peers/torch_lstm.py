"""PyTorch peer: nn.Embedding -> nn.LSTM (batch_first, num_layers) -> nn.Linear on the CPU, Adam with
global gradient-norm clipping, truncated BPTT with the hidden state carried between batches (detached).
Takes the common benchmark flags (see common.py) and prints one JSON line."""

from common import (
    emit,
    eprint,
    eval_batch_size,
    batches,
    parse_args,
    peak_rss_mib,
    read_ids,
    skip,
    timed_generation,
    timed_training,
)

SYSTEM = "torch"


def main():
    a = parse_args()
    global SYSTEM
    # --autocast bf16: PyTorch's CPU mixed precision (bf16 matmul inputs, f32 accumulation) around
    # forward and loss, the same arithmetic as lstmgen's precision "bf16"
    if a.autocast:
        SYSTEM = f"torch-{a.autocast}"
    try:
        import numpy as np
        import torch
        from torch import nn
    except Exception as e:  # not installed: reported, not dropped
        skip(SYSTEM, f"cannot import torch: {e} (run bench/setup-python.sh)")

    base_rss = peak_rss_mib()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_ids = read_ids(a.train)
    val_ids = read_ids(a.val)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(a.vocab, a.embedding)
            self.lstm = nn.LSTM(a.embedding, a.hidden, num_layers=a.layers, batch_first=True)
            self.out = nn.Linear(a.hidden, a.vocab)

        def forward(self, x, state=None):
            h, state = self.lstm(self.embed(x), state)
            return self.out(h), state

    model = LM()
    import contextlib

    def amp():
        if not a.autocast:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    state = None

    def step(x, y, first):
        nonlocal state
        if first:
            state = None
        x = torch.from_numpy(x)
        y = torch.from_numpy(y)
        if state is not None:
            state = tuple(s.detach() for s in state)
        with amp():
            logits, state = model(x, state)
            loss = loss_fn(logits.reshape(-1, a.vocab).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        return loss.item()

    model.train()
    result = timed_training(train_ids, a, step)

    # validation: one pass with the carried state, last short batch included
    model.eval()
    total, count, val_loss = 0.0, 0, None
    if not a.no_val:
        with torch.inference_mode(), amp():
            state = None
            for x, y, _ in batches(val_ids, eval_batch_size(len(val_ids), a.batch, a.seq), a.seq, False):
                logits, state = model(torch.from_numpy(x), state)
                total += nn.functional.cross_entropy(logits.reshape(-1, a.vocab).float(), torch.from_numpy(y).reshape(-1), reduction="sum").item()
                count += y.size
        val_loss = total / count

    # generation: a batch of gen-samples rows, the prompt fed once, then one token per step
    gen = torch.Generator().manual_seed(a.seed)

    def generate(n):
        with torch.inference_mode(), amp():
            prompt = torch.tensor(a.prompt or [0], dtype=torch.long).repeat(a.gen_samples, 1)
            logits, state = model(prompt)
            last = logits[:, -1]
            for _ in range(n):
                if a.temperature == 0:
                    nxt = last.argmax(dim=1, keepdim=True)
                else:
                    nxt = torch.multinomial(torch.softmax(last.float() / a.temperature, dim=1), 1, generator=gen)
                logits, state = model(nxt, state)
                last = logits[:, -1]


    emit(
        dict(
            result,
            system=SYSTEM,
            status="ok",
            valLoss=val_loss,
            valTokens=count,
            **timed_generation(generate, a),
            threads=torch.get_num_threads(),
            baseRssMiB=base_rss,
            versions={"torch": torch.__version__, "numpy": np.__version__, "mkldnn": torch.backends.mkldnn.is_available()},
            matmulLibrary=torch_libraries(torch),
            notes=[f"torch.get_num_threads()={torch.get_num_threads()}, interop {torch.get_num_interop_threads()}"]
            + ([f"torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss (mixed precision)"] if a.autocast else []),
        )
    )


def torch_libraries(torch):
    """The product libraries of this torch build, from torch.__config__.show(): the BLAS behind
    nn.Linear and the matmuls (BLAS_INFO, with MKL's version), oneDNN (MKL-DNN), which runs nn.LSTM's
    CPU forward and backward in f32 and bf16 when enabled, and the vector ISA its kernels dispatch to."""
    import re

    show = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", show)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", show)
    dnn = re.search(r"MKL-DNN (v[\d.]+)", show)
    isa = re.search(r"CPU capability usage: (\w+)", show)
    parts = [f"BLAS {blas.group(1) if blas else 'unknown'}" + (f" {mkl.group(1)}" if mkl else "")]
    if dnn:
        on = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
        parts.append(f"oneDNN {dnn.group(1)} ({'on' if on else 'off'}: nn.LSTM's RNN primitive)")
    if isa:
        parts.append(f"kernels {isa.group(1)}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
