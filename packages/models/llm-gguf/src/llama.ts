/** Shared node-llama-cpp loading: CPU only, the prebuilt binary only, an explicit thread count. */
import { getLlama, type Llama, type LlamaModel } from "node-llama-cpp";

let llama: Promise<Llama> | undefined;

/** llama.cpp on the CPU from @node-llama-cpp/linux-x64; never builds from source (that would download). */
export function cpuLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: "never", progressLogs: false });
  return llama;
}

/**
 * Threads per context from REPLICANT_LLM_THREADS (default 1). On a 2-core machine llama.cpp's default
 * (all cores) was ~190× slower than 1 thread on a tiny model, because the runner competes with the server.
 */
export function llmThreads(): number {
  const raw = process.env.REPLICANT_LLM_THREADS;
  if (raw === undefined || raw === "") return 1;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`REPLICANT_LLM_THREADS must be a positive integer, got ${raw}`);
  return threads;
}

/** The GGUF to serve: the version's weights, else REPLICANT_GGUF_PATH. */
export function ggufPath(weights: string | undefined): string {
  const path = weights ?? process.env.REPLICANT_GGUF_PATH;
  if (!path) {
    throw new Error(
      "no GGUF file: push one with `replicant push OWNER/NAME --gguf FILE` or set REPLICANT_GGUF_PATH",
    );
  }
  return path;
}

export async function loadModel(path: string): Promise<LlamaModel> {
  return (await cpuLlama()).loadModel({ modelPath: path, gpuLayers: 0 });
}
