"""PyTorch peer of the quality benchmark (bench/quality.mjs): the model and regularizers of lstmgen,
written the way AWD-LSTM writes them (Merity et al. 2017, salesforce/awd-lstm-lm), trained under a
wall-clock budget on the same token ids, batch layout and evaluation as lstmgen.

Embedding (with embedding dropout: whole word types per batch) -> locked dropout -> per layer an
nn.LSTM whose weight_hh_l0 is DropConnect-masked once per batch (weight drop), locked dropout
between layers and before the decoder -> Linear (weight tied to the embedding with --tie) ->
cross-entropy, plus AR/TAR; --proj P gives every layer nn.LSTM's projection (proj_size=P). Adam,
SGD (momentum) or NT-ASGD (AWD-LSTM's main.py: SGD, switched to torch.optim.ASGD(t0=0, lambd=0)
when a validation loss is above the best of those before the last --nonmono, evaluated with the
averaged weights), global-norm clipping, truncated BPTT with the state carried (detached) between
batches and reset each epoch. Prints one JSON line: the loss curve, validation and test loss in
nats/token."""

import argparse
import json
import math
import os
import sys
import time

import numpy as np


def args():
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("train", "val"):
        p.add_argument(f"--{name}", required=True, help="token ids, little-endian uint32")
    p.add_argument("--test", default=None)
    for name, default in (("vocab", None), ("embedding", None), ("hidden", None), ("layers", 1), ("batch", None),
                          ("seq", None), ("eval-batch", 10), ("eval-every", 200), ("curve-steps", 10), ("seed", 1234),
                          ("threads", os.cpu_count()), ("proj", 0), ("nonmono", 5)):
        p.add_argument(f"--{name}", type=int, required=default is None, default=default)
    for name, default in (("lr", 2e-3), ("momentum", 0.0), ("weight-decay", 0.0), ("clip", 5.0), ("dropout", 0.0),
                          ("dropout-embedding", 0.0), ("dropout-hidden", 0.0), ("dropout-output", 0.0),
                          ("dropout-words", 0.0), ("weight-drop", 0.0), ("ar", 0.0), ("tar", 0.0),
                          ("plateau-factor", 0.0), ("plateau-patience", 2), ("min-lr", 0.0), ("minutes", 5.0)):
        p.add_argument(f"--{name}", type=float, default=default)
    p.add_argument("--optimizer", choices=["adam", "sgd", "ntasgd"], default="adam")
    p.add_argument("--tie", action="store_true")
    return p.parse_args()


def read_ids(path):
    return np.fromfile(path, dtype="<u4").astype(np.int64)


def batches(ids, batch, seq, drop_last):
    """lstmgen's layout (ts/data.ts makeBatches): `batch` contiguous streams, read `seq` at a time."""
    stream_len = (len(ids) - 1) // batch
    x = ids[: batch * stream_len].reshape(batch, stream_len)
    y = ids[1 : batch * stream_len + 1].reshape(batch, stream_len)
    count = stream_len // seq if drop_last else -(-stream_len // seq)
    for k in range(count):
        yield x[:, k * seq : (k + 1) * seq], y[:, k * seq : (k + 1) * seq]


def main():
    a = args()
    import torch
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, val = read_ids(a.train), read_ids(a.val)
    test = read_ids(a.test) if a.test else None

    def mask(shape, p, like):
        """An inverted-dropout mask: 0 with probability p, else 1/(1-p)."""
        return like.new_empty(shape).bernoulli_(1 - p) / (1 - p)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(a.vocab, a.embedding)
            sizes = [a.embedding] + [out] * a.layers
            self.lstm = nn.ModuleList(nn.LSTM(sizes[l], a.hidden, batch_first=True, proj_size=a.proj)
                                      for l in range(a.layers))
            self.decoder = nn.Linear(out, a.vocab)
            if a.tie:
                self.decoder.weight = self.embedding.weight

        def forward(self, x, state):
            w = self.embedding.weight
            if self.training and a.dropout_words > 0:
                w = w * mask((a.vocab, 1), a.dropout_words, w)  # whole word types, this batch
            h = nn.functional.embedding(x, w)
            if self.training and a.dropout_embedding > 0:
                h = h * mask((h.size(0), 1, h.size(2)), a.dropout_embedding, h)  # one mask per sequence
            new_state, raw = [], None
            for l, rnn in enumerate(self.lstm):
                weights = list(rnn._flat_weights)
                if self.training and a.weight_drop > 0:
                    weights[1] = weights[1] * mask(weights[1].shape, a.weight_drop, weights[1])
                # nn.LSTM's own call, with the DropConnect-masked weight_hh (AWD-LSTM's WeightDrop)
                h, hn, cn = torch._VF.lstm(h, state[l], weights, True, 1, 0.0, self.training, False, True)
                new_state.append((hn, cn))
                raw = h
                if self.training and a.dropout > 0:
                    h = nn.functional.dropout(h, a.dropout)
                p = a.dropout_output if l == a.layers - 1 else a.dropout_hidden
                if self.training and p > 0:
                    h = h * mask((h.size(0), 1, h.size(2)), p, h)
            return self.decoder(h), new_state, h, raw

    out = a.proj or a.hidden  # each layer's output width
    model = LM()
    if a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=0.0)
        decay = a.weight_decay  # decoupled, as lstmgen's AdamW
    else:  # sgd, and ntasgd until its trigger
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
        decay = 0.0
    loss_fn = nn.CrossEntropyLoss()
    # lstmgen's plateau schedule: the rate times factor after `patience` validations in a row without a new best
    # (ReduceLROnPlateau reduces after more than its patience bad ones)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=a.plateau_factor, patience=int(a.plateau_patience) - 1, threshold=0.0, threshold_mode="abs",
        min_lr=a.min_lr) if a.plateau_factor > 0 else None

    def zero(batch):
        return [(torch.zeros(1, batch, out), torch.zeros(1, batch, a.hidden)) for _ in range(a.layers)]

    val_losses = []  # NT-ASGD's log of validation losses

    def averaged(f):
        """f() with the parameters swapped for ASGD's averages (as AWD-LSTM evaluates), when averaging."""
        if "t0" not in opt.param_groups[0]:
            return f()
        saved = {}
        with torch.no_grad():
            for p in model.parameters():
                saved[p] = p.data.clone()
                p.data.copy_(opt.state[p].get("ax", p.data))  # no ASGD step yet: the iterate
        try:
            return f()
        finally:
            with torch.no_grad():
                for p in model.parameters():
                    p.data.copy_(saved[p])

    def observe(loss):
        """AWD-LSTM's trigger: switch to ASGD when t > nonmono and loss > min(losses[:-nonmono])."""
        nonlocal opt
        t = len(val_losses)
        if a.optimizer == "ntasgd" and "t0" not in opt.param_groups[0] and t > a.nonmono \
                and loss > min(val_losses[: t - a.nonmono]):
            opt = torch.optim.ASGD(model.parameters(), lr=a.lr, t0=0, lambd=0.0, weight_decay=a.weight_decay)
        val_losses.append(loss)

    def evaluate(ids):
        model.eval()
        state, total, count = zero(a.eval_batch), 0.0, 0
        with torch.no_grad():
            for x, y in batches(ids, a.eval_batch, a.seq, False):
                logits, state, _, _ = model(torch.from_numpy(x), state)
                total += nn.functional.cross_entropy(logits.reshape(-1, a.vocab), torch.from_numpy(y).reshape(-1),
                                                     reduction="sum").item()
                count += y.size
        model.train()
        return total / count

    curve, window, step, epoch = [], [], 0, 0
    start = time.perf_counter()
    budget = a.minutes * 60
    done = False
    while not done:
        epoch += 1
        state = zero(a.batch)
        for x, y in batches(train, a.batch, a.seq, True):
            if time.perf_counter() - start >= budget:
                done = True
                break
            state = [(h.detach(), c.detach()) for h, c in state]
            logits, state, top, raw = model(torch.from_numpy(x), state)
            loss = loss_fn(logits.reshape(-1, a.vocab), torch.from_numpy(y).reshape(-1))
            objective = loss
            if a.ar > 0:
                objective = objective + a.ar * top.pow(2).mean()
            if a.tar > 0 and raw.size(1) > 1:
                objective = objective + a.tar * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            objective.backward()
            if a.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            if decay > 0:
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(1 - a.lr * decay)
            opt.step()
            step += 1
            window.append(loss.item())
            if len(window) == a.curve_steps:
                minutes = (time.perf_counter() - start) / 60
                curve.append({"kind": "train", "step": step, "minutes": minutes, "loss": sum(window) / len(window)})
                window = []
            if step % a.eval_every == 0:
                minutes = (time.perf_counter() - start) / 60
                v = averaged(lambda: evaluate(val))
                curve.append({"kind": "validation", "step": step, "minutes": minutes, "loss": v})
                print(json.dumps({"progress": curve[-1]}), file=sys.stderr, flush=True)
                if sched is not None:
                    sched.step(v)
                observe(v)
    minutes = (time.perf_counter() - start) / 60
    val_loss = averaged(lambda: evaluate(val))
    curve.append({"kind": "validation", "step": step, "minutes": minutes, "loss": val_loss})
    test_loss = averaged(lambda: evaluate(test)) if test is not None else None
    result = {"system": "pytorch", "torch": torch.__version__, "steps": step, "epochs": epoch, "minutes": minutes,
              "valLoss": val_loss, "testLoss": test_loss, "curve": curve}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
