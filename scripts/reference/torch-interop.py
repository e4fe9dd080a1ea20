#!/usr/bin/env python3
"""Check that lstmgen model files and PyTorch agree on the logits, in both directions (not part of CI).

    npm run build:ts
    node dist/cli/main.js train --corpus moby-dick --max-steps 50 --num-layers 2 --out /tmp/m.lstm   # any model
    .venv-ref/bin/python scripts/reference/torch-interop.py /tmp/m.lstm

Export: loads the lstmgen model file with safetensors.torch.load_file (the metadata is ignored) into
Embedding -> nn.LSTM(batch_first=True, proj_size=P when the file has lstm.weight_hr_l0 [P, H]) -> Linear, runs the ids that `node scripts/reference/torch-interop.js logits`
chose, and prints max |logit difference| against the logits lstmgen wrote.
Import: builds a freshly initialised PyTorch module of the same shape, saves its state dict with
safetensors.torch.save_file, has lstmgen import it (`importTorch`, tokenizer from the model file), and prints
max |logit difference| between PyTorch's and lstmgen's logits.
Exits 1 if either difference exceeds --tol (default 1e-4).

Environment: scripts/reference/requirements.txt (torch, safetensors), e.g. the venv .venv-ref.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_SCRIPT = os.path.join(REPO, "scripts", "reference", "torch-interop.js")


class LstmLM(nn.Module):
    """The lstmgen network in PyTorch: parameter names match lstmgen's model files."""

    def __init__(self, vocab, embed, hidden, layers, proj):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True, proj_size=proj)
        self.decoder = nn.Linear(proj or hidden, vocab)

    @staticmethod
    def shape_of(state):
        vocab, embed = state["embedding.weight"].shape
        hidden = state["lstm.weight_hh_l0"].shape[0] // 4  # [4H, out]
        layers = sum(1 for k in state if k.startswith("lstm.weight_ih_l"))
        proj = state["lstm.weight_hr_l0"].shape[0] if "lstm.weight_hr_l0" in state else 0
        return vocab, embed, hidden, layers, proj

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V], zero initial state
        out, _ = self.lstm(self.embedding(ids))
        return self.decoder(out)


def node(*args):
    subprocess.run(["node", NODE_SCRIPT, *args], check=True, cwd=REPO)


def logits_of(module, ids):
    with torch.no_grad():
        return module.eval()(torch.tensor(ids, dtype=torch.long))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="an lstmgen model file (.lstm)")
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # export: lstmgen file -> PyTorch
        lstmgen_json = os.path.join(tmp, "lstmgen_logits.json")
        node("logits", args.model, lstmgen_json)
        ref = json.load(open(lstmgen_json))
        state = load_file(args.model)
        module = LstmLM(*LstmLM.shape_of(state))
        module.load_state_dict(state, strict=True)
        theirs = torch.tensor(ref["logits"], dtype=torch.float32).reshape(len(ref["ids"]), len(ref["ids"][0]), -1)
        export_diff = (logits_of(module, ref["ids"]) - theirs).abs().max().item()
        vocab, embed, hidden, layers, proj = LstmLM.shape_of(state)
        print(f"export: {args.model} (vocab {vocab}, embedding {embed}, hidden {hidden}, layers {layers}, "
              f"projection {proj}) loaded into "
              f"PyTorch {torch.__version__}: max |logit difference| = {export_diff:.3e}")

        # import: PyTorch state dict -> lstmgen
        torch.manual_seed(0)
        fresh = LstmLM(vocab, embed, hidden, layers, proj)
        torch_file = os.path.join(tmp, "torch.safetensors")
        save_file({k: v.contiguous() for k, v in fresh.state_dict().items()}, torch_file)
        imported_json = os.path.join(tmp, "imported_logits.json")
        node("import", torch_file, args.model, lstmgen_json, imported_json)
        got = json.load(open(imported_json))
        mine = torch.tensor(got["logits"], dtype=torch.float32).reshape(len(ref["ids"]), len(ref["ids"][0]), -1)
        import_diff = (logits_of(fresh, ref["ids"]) - mine).abs().max().item()
        print(f"import: a PyTorch-initialised state dict imported by lstmgen: max |logit difference| = {import_diff:.3e}")

    ok = export_diff <= args.tol and import_diff <= args.tol
    print("OK" if ok else f"FAIL: difference above {args.tol}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
