//! `metal-marlin inspect`: a model file's architecture, metadata and tensors.

use anyhow::Result;

use crate::args::InspectArgs;

pub fn run(a: InspectArgs) -> Result<()> {
    let text = marlin_models::inspect::describe(&a.file, a.all)?;
    print!("{text}");
    Ok(())
}
