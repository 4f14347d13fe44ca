//! Scoring a token sequence (perplexity) on the engine thread, between steps, with a
//! temporary block table.

use marlin_models::{LogitsRequest, SeqInput};

use crate::blocks::BlockTable;
use crate::generate::PREFILL_CHUNK;
use crate::sampler::token_logprob;
use crate::serve::scheduler::Scheduler;
use crate::{Error, Result};

/// Each position's log-probability of the token after it (`tokens.len() - 1` values).
pub(crate) fn score(sched: &mut Scheduler, tokens: &[u32]) -> Result<Vec<f32>> {
    if tokens.len() < 2 {
        return Err(Error::InvalidRequest(
            "scoring needs at least 2 tokens".into(),
        ));
    }
    if tokens.len() > sched.capacity {
        return Err(Error::InvalidRequest(format!(
            "{} tokens do not fit the context of {} tokens",
            tokens.len(),
            sched.capacity
        )));
    }
    let vocab = sched.runner.model().config.vocab;
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(Error::InvalidRequest(format!(
            "token id {t} is outside the vocabulary ({vocab})"
        )));
    }
    let mut table = BlockTable::new();
    let r = run(sched, &mut table, tokens);
    sched.pool.release(&mut table);
    r
}

fn run(sched: &mut Scheduler, table: &mut BlockTable, tokens: &[u32]) -> Result<Vec<f32>> {
    sched.pool.reserve(table, tokens.len())?;
    let mut out = Vec::with_capacity(tokens.len() - 1);
    for (c, chunk) in tokens.chunks(PREFILL_CHUNK).enumerate() {
        let start = c * PREFILL_CHUNK;
        let seq = SeqInput {
            tokens: chunk,
            start_pos: start,
            block_table: table.blocks(),
            logits: LogitsRequest::All,
        };
        let logits = sched.runner.forward(&[seq])?;
        for j in 0..chunk.len() {
            if let Some(&next) = tokens.get(start + j + 1) {
                out.push(token_logprob(logits.row(j), next).unwrap_or(f32::NAN));
            }
        }
    }
    Ok(out)
}
