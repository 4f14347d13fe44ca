//! What every command needs: threads, device choice, loading with a progress bar, prompts.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use marlin_engine::sampler::SamplingParams;
use marlin_models::chat::ChatMessage;
use marlin_models::Model;

use crate::args::{ModelArgs, SamplingArgs};

/// The device a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
}

impl DeviceChoice {
    /// Name printed in JSON outputs.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
        }
    }
}

/// Parse `--device`. `auto` falls back to the CPU when no hardware GPU exists.
pub fn pick_device(arg: &str) -> Result<DeviceChoice> {
    match arg {
        "auto" | "cpu" => Ok(DeviceChoice::Cpu),
        other => bail!("unknown device `{other}` (expected auto or cpu)"),
    }
}

/// Size rayon's global pool.
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}

/// Set threads and load `--model` (a path, a cached name or `synthetic:PRESET:FORMAT`)
/// with a progress bar.
pub fn load_model(args: &ModelArgs) -> Result<(Arc<Model>, DeviceChoice)> {
    init_threads(args.threads)?;
    let device = pick_device(&args.device)?;
    let pb = progress_bar(1, "loading");
    let model = Model::load_spec(&args.model, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("loading {}", args.model))?;
    pb.finish_and_clear();
    Ok((Arc::new(model), device))
}

/// Tokenize a prompt: through the chat template unless `raw`; special tokens in the text
/// are recognised; BOS is added when the model wants it and the text does not start with it.
pub fn encode_prompt(model: &Model, messages: &[ChatMessage], raw: bool) -> Result<Vec<u32>> {
    let text = if raw {
        messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        model.render_chat(messages)?
    };
    Ok(model.encode_prompt(&text)?)
}

/// Sampling parameters from the command line.
pub fn sampling_params(a: &SamplingArgs) -> Result<SamplingParams> {
    let p = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repetition_penalty: a.repeat_penalty,
        seed: a.seed,
        max_tokens: a.max_tokens,
        stop: a.stop.clone(),
        ..SamplingParams::default()
    };
    p.validate()?;
    Ok(p)
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
