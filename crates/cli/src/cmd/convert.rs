//! `metal-marlin convert`: export a model as a Hugging Face folder.

use std::path::Path;

use anyhow::{Context, Result};
use marlin_models::Model;
use marlin_quant::convert::{convert, FloatDtype};

use crate::args::ConvertArgs;
use crate::common::{init_threads, progress_bar};

pub fn run(a: ConvertArgs) -> Result<()> {
    init_threads(a.threads)?;
    let dtype = FloatDtype::parse(&a.dtype)?;
    let path = marlin_models::source::resolve_model(&a.model)?;
    let pb = progress_bar(1, "loading");
    let model = Model::load(&path, &mut |d, t| {
        pb.set_length(t as u64);
        pb.set_position(d as u64);
    })
    .with_context(|| format!("loading {}", a.model))?;
    pb.set_message("writing");
    let out = convert(&model, Path::new(&path), &a.out, dtype, &mut |d, t| {
        pb.set_length(t as u64);
        pb.set_position(d as u64);
    })?;
    pb.finish_and_clear();
    println!(
        "{}",
        serde_json::json!({ "out": out.display().to_string(), "dtype": a.dtype })
    );
    Ok(())
}
