//! `metal-marlin bench serve`: load a running OpenAI-compatible server and print JSON.

use anyhow::Result;
use marlin_server::bench::{self, BenchConfig};

use crate::args::BenchServeArgs;

pub fn run(a: BenchServeArgs) -> Result<()> {
    let report = bench::run(&BenchConfig {
        url: a.url,
        concurrency: a.concurrency,
        requests: a.requests,
        max_tokens: a.max_tokens,
        prompt: a.prompt,
        model: a.model,
        api_key: a.api_key,
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
