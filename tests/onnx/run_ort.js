// run_ort.js - runs ONNX models with ONNX Runtime (onnxruntime-node) for the
// ONNX export test: for each job, reads a raw little-endian input tensor,
// runs the model's "input" -> "predictions", and writes the output raw, once
// as the graph stands (OUT.bin) and once after ONNX Runtime's own graph
// optimizations, the default a user gets (OUT.bin with ".opt" before ".bin").
//
// usage: node run_ort.js JOBS.json
//   JOBS.json: [{"model": M.onnx, "input": IN.bin, "dtype": "float32"|"int32",
//                "shape": [N, ...], "output": OUT.bin}, ...]
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readTensor(path, dtype, shape) {
  const buf = fs.readFileSync(path);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
  const data = dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
  const want = shape.reduce((a, b) => a * b, 1);
  if (data.length !== want) throw new Error(`${path}: ${data.length} values, shape needs ${want}`);
  return new ort.Tensor(dtype, data, shape);
}

async function main() {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const job of jobs) {
    const levels = {'': 'disabled', '.opt': 'all'};
    for (const [suffix, level] of Object.entries(levels)) {
      const session = await ort.InferenceSession.create(job.model, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: level,
      });
      const out = await session.run({input: readTensor(job.input, job.dtype, job.shape)});
      const y = out.predictions;
      const path = job.output.replace(/\.bin$/, `${suffix}.bin`);
      fs.writeFileSync(path, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
      console.log(`${job.model} (${level}): predictions [${y.dims.join(', ')}]`);
    }
  }
}

main().catch((e) => {
  console.error(`run_ort: ${e.message}`);
  process.exit(1);
});
