#!/usr/bin/env python3
"""Generate an independent forward-pass reference fixture with PyTorch nn.LSTM (CPU).

Regenerate (from the repo root):
    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r scripts/reference/requirements.txt
    .venv-ref/bin/python scripts/reference/make-forward-fixture.py

Writes crates/lstmgen-core/tests/fixtures/forward_reference.json; with `--proj-size P` (the
projection of nn.LSTM(proj_size=P), lstmgen's projSize) it writes forward_reference_proj.json:
    .venv-ref/bin/python scripts/reference/make-forward-fixture.py --proj-size 3

Model: Embedding(V, E) -> LSTM(E, H, num_layers=L, batch_first=True[, proj_size=P]) -> Linear(out, V),
out = P with a projection (h_t = W_hr (o_t * tanh(c_t)), weight_hr_l{k} [P, H]), else H.
Every parameter is U(-0.5, 0.5) (seed 1234), rounded to float32 and stored as float32;
reference outputs are computed in float64 from those float32 values.
Batch 0 starts from zero state; batch 1 continues from batch 0's final (h, c).
Loss is mean cross-entropy (nats) over all batchSize*seqLen positions.
Gate order in the weight rows is PyTorch's: input, forget, cell (g), output.
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

V, E, H, L = 11, 5, 7, 2
B = 3
SEQ_LENS = [6, 4]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "crates", "lstmgen-core", "tests", "fixtures")


class Model(nn.Module):
    def __init__(self, proj_size):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, num_layers=L, batch_first=True, proj_size=proj_size)
        self.decoder = nn.Linear(proj_size or H, V)

    def forward(self, ids, state):
        out, (h, c) = self.lstm(self.embedding(ids), state)
        return self.decoder(out), (h, c)


def flat(t):
    return t.detach().reshape(-1).tolist()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proj-size", type=int, default=0, help="nn.LSTM proj_size (0: none)")
    P = parser.parse_args().proj_size
    name = "forward_reference_proj.json" if P else "forward_reference.json"
    OUT = os.path.join(FIXTURES, name)
    torch.manual_seed(1234)
    model = Model(P)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    model = model.float()  # weights are exactly float32 values
    params = {
        name: {"shape": list(p.shape), "data": [float(x) for x in p.detach().float().reshape(-1).tolist()]}
        for name, p in model.state_dict().items()
    }
    model = model.double()  # compute in float64 from the float32-rounded weights
    model.eval()

    state = (torch.zeros(L, B, P or H, dtype=torch.float64), torch.zeros(L, B, H, dtype=torch.float64))
    batches = []
    with torch.no_grad():
        for T in SEQ_LENS:
            inputs = torch.randint(0, V, (B, T))
            targets = torch.randint(0, V, (B, T))
            logits, state = model(inputs, state)
            loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="mean")
            batches.append({
                "inputs": flat(inputs),
                "targets": flat(targets),
                "batchSize": B,
                "seqLen": T,
                "logits": flat(logits),
                "loss": loss.item(),
                "h_n": flat(state[0]),
                "c_n": flat(state[1]),
            })

    fixture = {
        "source": f"PyTorch {torch.__version__} nn.LSTM, scripts/reference/make-forward-fixture.py"
        + (f" --proj-size {P}" if P else ""),
        "config": {"vocabSize": V, "embeddingDim": E, "hiddenSize": H, "numLayers": L, "projSize": P},
        "params": params,
        "batches": batches,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
