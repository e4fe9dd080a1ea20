#!/usr/bin/env node
/**
 * The lstmgen half of scripts/reference/torch-interop.py (needs `npm run build:ts`). Writes JSON for the Python side:
 *
 *   node scripts/reference/torch-interop.js logits MODEL.lstm OUT.json
 *       ids [batch, seqLen] from the start of a text in the model's vocabulary, and lstmgen's logits for them
 *   node scripts/reference/torch-interop.js import TORCH.safetensors TOKENIZER IDS.json OUT.json
 *       imports a PyTorch state dict with importTorch() (TOKENIZER: an lstmgen model or tokenizer JSON file)
 *       and writes its logits for the ids of IDS.json
 *
 * Logits are float32 values `[batch, seqLen, vocab]`, flattened, written as JSON numbers (exact for float32).
 */
const fs = require('node:fs');
const path = require('node:path');
const { loadModel, importTorch } = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const BATCH = 2;
const SEQ_LEN = 48;

async function writeLogits(model, ids, out) {
  const logits = await model.logits(Uint32Array.from(ids.flat()), ids.length, ids[0].length);
  const record = { ids, vocabSize: model.tokenizer.vocabSize, logits: Array.from(logits) };
  fs.writeFileSync(out, JSON.stringify(record));
  console.log(`wrote ${out}: ${ids.length} x ${ids[0].length} ids, ${logits.length} logits`);
}

async function main([mode, ...args]) {
  if (mode === 'logits' && args.length === 2) {
    const [modelFile, out] = args;
    const model = await loadModel(modelFile, { device: 'cpu' });
    // ids cycle through the vocabulary so every embedding row is used
    const V = model.tokenizer.vocabSize;
    const ids = Array.from({ length: BATCH }, (_, b) =>
      Array.from({ length: SEQ_LEN }, (_, t) => (b * 7 + t * 13) % V),
    );
    return writeLogits(model, ids, out);
  }
  if (mode === 'import' && args.length === 4) {
    const [torchFile, tokenizer, idsFile, out] = args;
    const model = await importTorch(torchFile, { tokenizer, device: 'cpu' });
    return writeLogits(model, JSON.parse(fs.readFileSync(idsFile, 'utf8')).ids, out);
  }
  console.error(
    'usage: torch-interop.js logits MODEL.lstm OUT.json | import TORCH.safetensors TOKENIZER IDS.json OUT.json',
  );
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`torch-interop.js: ${err.message}`);
  process.exitCode = 1;
});
