//! `metal-marlin serve`: load the model, start the engine thread and serve the OpenAI API.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context, Result};
use marlin_engine::serve::{EngineConfig, EngineHandle};
use marlin_models::kv_cache::{KvCache, KvDtype, BLOCK_SIZE};
use marlin_models::{Device, GpuKvCache};
use marlin_server::ServerOptions;

use crate::args::ServeArgs;
use crate::common::load_model;

/// Default KV cache size when neither `--num-kv-blocks` nor `--kv-memory` is given.
const DEFAULT_KV_BYTES: u64 = 2 << 30;

pub fn run(a: ServeArgs) -> Result<()> {
    let kv_dtype = KvDtype::parse(&a.kv_cache_dtype).map_err(|_| {
        anyhow!(
            "--kv-cache-dtype {}: use f16, fp8 or int8",
            a.kv_cache_dtype
        )
    })?;
    if a.max_num_seqs == 0 || a.max_batched_tokens == 0 {
        bail!("--max-num-seqs and --max-batched-tokens must be at least 1");
    }
    let addr: SocketAddr = (a.host.as_str(), a.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {}", a.host))?
        .next()
        .with_context(|| format!("--host {} resolves to no address", a.host))?;
    let (model, device) = load_model(&a.model)?;
    // The GPU pads each quantized head row to whole words: count its own bytes there.
    let per_token = match device.device {
        Device::Cpu => KvCache::bytes_per_token_dtype(&model.config, kv_dtype),
        _ => GpuKvCache::bytes_per_token(&model.config, kv_dtype),
    };
    let per_block = (per_token * BLOCK_SIZE).max(1) as u64;
    let num_blocks = match (a.num_kv_blocks, &a.kv_memory) {
        (Some(n), _) => n,
        (None, Some(m)) => (parse_bytes(m)? / per_block) as usize,
        (None, None) => {
            let full = model.config.context_length.div_ceil(BLOCK_SIZE) * a.max_num_seqs;
            ((DEFAULT_KV_BYTES / per_block) as usize).min(full)
        }
    };
    if num_blocks == 0 {
        bail!("the KV cache would hold no block ({per_block} bytes each)");
    }
    let cfg = EngineConfig {
        max_num_seqs: a.max_num_seqs,
        max_batched_tokens: a.max_batched_tokens,
        num_blocks,
        max_requests: a.max_requests,
        prefix_caching: !a.no_prefix_cache,
        batch_invariant: a.batch_invariant,
        kv_dtype,
    };
    let engine = EngineHandle::start(model.clone(), device.device.clone(), cfg)?;
    let name = a.served_model_name.clone().unwrap_or_else(|| {
        std::path::Path::new(&a.model.model)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| a.model.model.clone())
    });
    let opts = ServerOptions {
        served_model_name: name.clone(),
        api_key: a.api_key.clone(),
        body_limit: a.body_limit,
        max_n: a.max_n,
        ..ServerOptions::default()
    };
    let ctx = engine.capacity();
    marlin_server::run_blocking(engine, opts, addr, |bound| {
        eprintln!(
            "serving {name} on http://{bound} ({}; {num_blocks} KV blocks, context {ctx}); Ctrl-C stops",
            device.name()
        );
    })?;
    Ok(())
}

/// `1073741824`, `512M`, `2GiB`, ... in bytes.
fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .with_context(|| format!("--kv-memory {s}: not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => bail!("--kv-memory {s}: unknown unit {u:?}"),
    };
    Ok((x * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5 M").unwrap(), 3 << 19);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
