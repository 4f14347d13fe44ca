//! Command-line arguments (clap), one struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// metal-marlin: run, evaluate and benchmark quantized LLMs on CPU and GPU.
#[derive(Parser, Debug)]
#[command(name = "metal-marlin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Answer one prompt, streaming the text to stdout.
    Run(RunArgs),
    /// Export any model as a Hugging Face folder (safetensors + config.json + tokenizer).
    Convert(ConvertArgs),
    /// Quantize a model into a metal-marlin checkpoint (RTN, GPTQ, MR-GPTQ).
    Quantize(QuantizeArgs),
    /// Interactive chat (`/reset` clears the history, `/exit` quits).
    Chat(ChatArgs),
    /// Quality evaluations.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Speed: prefill and decode tokens per second, as JSON (`bench kernels`: GPU kernels).
    Bench(BenchArgs),
    /// List GPU adapters (the `N` of `--device gpu:N`) and the CPU backend.
    Devices,
    /// Print a model file's architecture, metadata and tensors.
    Inspect(InspectArgs),
    /// OpenAI-compatible HTTP server with continuous batching.
    Serve(ServeArgs),
}

/// Where and how to load a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A GGUF file, a Hugging Face folder, a cached name (`default`, `gemma3`), or a
    /// random-weight model `synthetic:PRESET:FORMAT` (llama3-8b, llama3-1b, smollm2-135m,
    /// glm47-flash, glm47-tiny).
    #[arg(long, short = 'm', default_value = "default")]
    pub model: String,
    /// `auto` (a hardware GPU if present, else the CPU) or `cpu`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Sampling options shared by `run` and `chat`.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The prompt.
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Feed the prompt as is, without the chat template (special tokens are still parsed).
    #[arg(long)]
    pub raw: bool,
    /// Print one JSON object (text, ids, counts, speeds) instead of streaming.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// A system message for the conversation.
    #[arg(long)]
    pub system: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Perplexity of a text file (llama.cpp's windows: second half of each window scored).
    Perplexity(PerplexityArgs),
    /// The prompt's token ids and the top logits at every position, as JSON.
    Logits(LogitsArgs),
    /// KL divergence and top-1 agreement of a model against a reference, on a text.
    Kl(KlArgs),
}

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to score.
    #[arg(long)]
    pub file: PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Score every token of each window, not only the second half.
    #[arg(long)]
    pub score_all: bool,
}

#[derive(Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// Logits kept per position.
    #[arg(long, default_value_t = 20)]
    pub top_k: usize,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// A kernel benchmark instead of the model benchmark.
    #[command(subcommand)]
    pub kind: Option<BenchCommand>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    pub prompt_len: usize,
    /// Tokens for the decode measurement.
    #[arg(long, default_value_t = 128)]
    pub gen_len: usize,
    /// Timed repetitions (after one warm-up); the mean is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// GPU GEMV GB/s and GEMM TFLOP/s per format against copy bandwidth, as JSON.
    Kernels(BenchKernelsArgs),
    /// Load a running server: throughput, TTFT/TPOT percentiles and errors, as JSON.
    Serve(BenchServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Most sequences in one batch.
    #[arg(long, default_value_t = 64)]
    pub max_num_seqs: usize,
    /// Most tokens in one step (decode tokens plus prefill chunks).
    #[arg(long, default_value_t = 512)]
    pub max_batched_tokens: usize,
    /// KV cache size in 16-token blocks.
    #[arg(long, conflicts_with = "kv_memory")]
    pub num_kv_blocks: Option<usize>,
    /// KV cache size in bytes (suffixes K, M, G, KiB, MiB, GiB); default 2GiB, capped at
    /// what `--max-num-seqs` full contexts need.
    #[arg(long)]
    pub kv_memory: Option<String>,
    /// KV storage type: f16, fp8 (E4M3) or int8, the last two with a scale per token per kv
    /// head (CPU only).
    #[arg(long, default_value = "f16")]
    pub kv_cache_dtype: String,
    /// Require `Authorization: Bearer KEY` on /v1 routes.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The model id clients use (default: the --model argument's file stem).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Most requests queued or running; more get 429.
    #[arg(long, default_value_t = 256)]
    pub max_requests: usize,
    /// Most choices (`n`) per request.
    #[arg(long, default_value_t = 8)]
    pub max_n: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub body_limit: usize,
    /// Turn the prefix cache off.
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Make each request's tokens independent of what it is batched with (CPU: pads steps
    /// to whole matmul tiles; slower, above all for a single stream).
    #[arg(long)]
    pub batch_invariant: bool,
}

#[derive(Args, Debug)]
pub struct BenchServeArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Clients sending back to back.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 64)]
    pub requests: usize,
    /// Tokens per completion (EOS ignored).
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    #[arg(long, default_value = "Write a short story about a lighthouse keeper.")]
    pub prompt: String,
    /// The `model` field (default: omitted).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub api_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchKernelsArgs {
    /// `auto` (a hardware GPU), `gpu` (best adapter, software included) or `gpu:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Weight rows; with `--cols`, replaces the default shapes (14336×4096 and 4096×4096).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Weight columns (the reduction length).
    #[arg(long)]
    pub cols: Option<usize>,
    /// Weight formats, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "q4_0,q4_k,q8_0,f16")]
    pub formats: Vec<String>,
    /// Timed runs per kernel (after a warm-up).
    #[arg(long, default_value_t = 100)]
    pub iters: u32,
    /// Activation rows of the GEMM measurement (prefill); 0 skips GEMM.
    #[arg(long, default_value_t = 512)]
    pub gemm_tokens: usize,
    /// Small-batch decode token counts, comma-separated (e.g. `1,2,4,8,16`): per count the
    /// kernel the engine runs (gemv, gemv_multi or gemm) and, where that is not the GEMM,
    /// the GEMM too, as time per step and weight GB/s. Empty skips it.
    #[arg(long, value_delimiter = ',')]
    pub gemv_tokens: Vec<usize>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A GGUF file or a Hugging Face folder.
    pub file: PathBuf,
    /// Print every tensor (default: the first 40).
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The model to export (GGUF file or HF folder).
    #[arg(long, short = 'm')]
    pub model: String,
    /// New output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Matrix dtype: f16, bf16 or f32 (norms are always f32).
    #[arg(long, default_value = "f16")]
    pub dtype: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The model to quantize (HF folder, or a GGUF file, dequantized first).
    #[arg(long, short = 'm')]
    pub model: String,
    /// New output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// fp4, mxfp4, nvfp4, int8, int4, int3, int2 (add `z` for zero points: int4z), fp8,
    /// trellis (with --bits, --codebook), or a full format name such as fp4_g64 or
    /// trellis3_mcg.
    #[arg(long, default_value = "fp4")]
    pub format: String,
    /// Trellis bits per weight: 2, 3 or 4 (with --format trellis; default 3).
    #[arg(long)]
    pub bits: Option<u32>,
    /// Trellis codebook: inst3, mcg or mul1 (default: the format name's, else the default).
    #[arg(long)]
    pub codebook: Option<String>,
    /// rtn, gptq or mr-gptq (GPTQ methods need --calibration).
    #[arg(long, default_value = "rtn")]
    pub method: String,
    /// Elements per scale group (fp4 and integer formats): 32, 64, 128, 256.
    #[arg(long, default_value_t = 128)]
    pub group_size: usize,
    /// Block-Hadamard rotation size (0 = none; mr-gptq defaults to the scale group).
    #[arg(long, default_value_t = 0)]
    pub hadamard: usize,
    /// Calibration text file (GPTQ, MR-GPTQ).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Calibration windows.
    #[arg(long, default_value_t = 32)]
    pub samples: usize,
    /// Tokens per calibration window.
    #[arg(long, default_value_t = 256)]
    pub seq_len: usize,
    /// GPTQ calibration order: `sequential` (each layer's inputs come through the already
    /// quantized layers) or `one-pass` (inputs from the unquantized model). Both hold one
    /// layer's Hessians at a time.
    #[arg(long, default_value = "sequential")]
    pub calibration_order: String,
    /// dense, moe, quality or speed.
    #[arg(long)]
    pub mixed_precision: Option<String>,
    /// 'REGEX=FORMAT[:G]' per-tensor rule (repeatable; the last match wins; f16 keeps float).
    #[arg(long = "override")]
    pub overrides: Vec<String>,
    /// Where calibration runs (only cpu).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KlArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The reference (base) model.
    #[arg(long)]
    pub reference: String,
    /// The text to compare on.
    #[arg(long)]
    pub file: PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Score every position of each window, not only the second half.
    #[arg(long)]
    pub score_all: bool,
    /// Print JSON (the default output is one JSON line too; kept for symmetry).
    #[arg(long)]
    pub json: bool,
}
