//! What every command needs: threads, device choice, loading with a progress bar, prompts.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::chat::ChatMessage;
use marlin_models::{Device, GpuModel, Model};

use crate::args::{ModelArgs, SamplingArgs};

/// The device a command runs on, with the name printed in JSON outputs.
#[derive(Clone)]
pub struct DeviceChoice {
    pub device: Device,
    pub name: String,
}

impl DeviceChoice {
    /// Name printed in JSON outputs (`cpu`, or `gpu:N (adapter)`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An engine for `model` on this device, its cache sized for `max_tokens`.
    pub fn engine(&self, model: Arc<Model>, max_tokens: usize) -> Result<Engine> {
        Ok(Engine::new(model, max_tokens).with_device(self.device.clone())?)
    }
}

/// Open `--device` for `model`: `cpu`; `gpu`/`gpu:N` (an error if that adapter or a kernel
/// for one of the model's formats is missing); `auto`, a hardware GPU when one exists and
/// runs every weight format of the model, else the CPU.
pub fn open_device(arg: &str, model: &Model) -> Result<DeviceChoice> {
    let cpu = || DeviceChoice {
        device: Device::Cpu,
        name: "cpu".into(),
    };
    let sel: DeviceSelector = arg
        .parse()
        .with_context(|| format!("--device {arg} (expected auto, cpu, gpu or gpu:N)"))?;
    if matches!(sel, DeviceSelector::Cpu) {
        return Ok(cpu());
    }
    let explicit = !matches!(sel, DeviceSelector::Auto);
    let ctx = match GpuContext::new(sel) {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Ok(cpu()),
        Err(e) if !explicit => {
            tracing::warn!("no usable GPU ({e}); running on the CPU");
            return Ok(cpu());
        }
        Err(e) => return Err(e).context("opening the GPU"),
    };
    let name = format!("gpu:{} ({})", ctx.summary.index, ctx.summary.name);
    let pb = progress_bar(1, "uploading");
    let uploaded = GpuModel::new(Arc::new(ctx), model);
    pb.finish_and_clear();
    match uploaded {
        Ok(g) => Ok(DeviceChoice {
            device: Device::Gpu(Arc::new(g)),
            name,
        }),
        Err(e) if !explicit => {
            tracing::warn!("{name} cannot run this model ({e}); running on the CPU");
            Ok(cpu())
        }
        Err(e) => Err(e).with_context(|| format!("uploading the model to {name}")),
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
    let pb = progress_bar(1, "loading");
    let model = Model::load_spec(&args.model, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("loading {}", args.model))?;
    pb.finish_and_clear();
    let device = open_device(&args.device, &model)?;
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
