#!/usr/bin/env node
// Greedy ids from llama.cpp (through node-llama-cpp's prebuilt CPU binary, pinned in
// package.json) for given prompt ids: an independent cross-check of Forge's forward.
//
// The prompt ids are evaluated exactly as given (no tokenizer, BOS included by the caller),
// then N tokens are generated with temperature 0 (argmax), no penalties.
//
// Setup (once): cd scripts/ref && npm ci      (never downloads or builds: build "never")
// Usage:
//   node scripts/ref/llamacpp_greedy.mjs MODEL.gguf 1,403,407,261,378 200
//       -> prints {"greedy_ids": [...]}
//   node scripts/ref/llamacpp_greedy.mjs --jobs jobs.json
//       jobs.json: [{"model": "x.gguf", "prompt_ids": [...], "n": 20}, ...]
//       -> prints a JSON list of {"model", "prompt_ids", "greedy_ids"} in the same order
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const THREADS = Number(process.env.LLAMACPP_THREADS || 1);

async function main() {
    const args = process.argv.slice(2);
    let jobs;
    let single = false;
    if (args[0] === "--jobs") {
        jobs = JSON.parse(fs.readFileSync(args[1], "utf8"));
    } else if (args.length === 3) {
        single = true;
        jobs = [{model: args[0], prompt_ids: args[1].split(",").map(Number), n: Number(args[2])}];
    } else {
        console.error("usage: llamacpp_greedy.mjs MODEL.gguf IDS N | --jobs jobs.json");
        process.exit(2);
    }
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
        progressLogs: false, logLevel: LlamaLogLevel.error
    });
    const results = [];
    const models = new Map();
    for (const job of jobs) {
        let model = models.get(job.model);
        if (!model) {
            model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
            models.set(job.model, model);
        }
        const ctxSize = Math.max(64, job.prompt_ids.length + job.n + 8);
        const context = await model.createContext({contextSize: ctxSize, sequences: 1, threads: THREADS});
        const seq = context.getSequence();
        const out = [];
        let input = job.prompt_ids;
        // evaluate() is a generator of sampled tokens; restart it if it ever stops early
        // (e.g. on an end-of-generation token), feeding the last token back.
        while (out.length < job.n) {
            const gen = seq.evaluate(input, {temperature: 0});
            let stopped = true;
            for await (const tok of gen) {
                out.push(tok);
                if (out.length >= job.n) {
                    stopped = false;
                    break;
                }
            }
            if (stopped && out.length < job.n) input = [out[out.length - 1]];
        }
        results.push({model: job.model, prompt_ids: job.prompt_ids, greedy_ids: out});
        await context.dispose();
    }
    for (const m of models.values()) await m.dispose();
    await llama.dispose();
    console.log(JSON.stringify(single ? {greedy_ids: results[0].greedy_ids} : results));
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
