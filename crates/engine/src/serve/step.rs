//! One forward step of the scheduler: copy-on-write and block reservation for the planned
//! sequences, the batched forward pass, then sampling (forking a request's other choices at
//! the end of its prompt) and retiring finished sequences. On the GPU, a batch of greedy
//! sequences without penalties or logprobs reads back only the argmax ids.

use std::sync::atomic::Ordering;

use marlin_models::{Logits, LogitsRequest, SeqInput};

use crate::serve::scheduler::Scheduler;
use crate::serve::sequence::Sequence;
use crate::serve::stats;

/// What a step produced: every requested logits row, or only their argmax ids.
enum Picks {
    Logits(Logits),
    Ids(Vec<u32>),
}

/// One sequence's share of [`Picks`].
enum Pick {
    Logits(Vec<f32>),
    Id(u32),
}

impl Scheduler {
    /// True when sequence `i` samples by plain argmax: greedy, no penalties, no logprobs,
    /// and no choices left to fork.
    fn plain_greedy(&self, i: usize) -> bool {
        let s = &self.running[i];
        let p = s.sampler.params();
        let Some(r) = self.reqs.get(&s.req) else {
            return false;
        };
        p.is_greedy()
            && p.repetition_penalty == 1.0
            && p.presence_penalty == 0.0
            && p.frequency_penalty == 0.0
            && r.logprobs.is_none()
            && r.forked
    }
    /// Reserves blocks, runs the forward pass of `plan` and processes its logits.
    pub(crate) fn run(&mut self, plan: &[(usize, usize)]) {
        let mut ok = Vec::with_capacity(plan.len());
        // Requests to end once the batch is processed: (id, error).
        let mut ends: Vec<(u64, Option<String>)> = Vec::new();
        for &(i, take) in plan {
            let s = &mut self.running[i];
            let runner = &mut self.runner;
            let r = self
                .pool
                .make_writable(&mut s.table, s.computed, &mut |a, b| {
                    runner.copy_block(a, b)
                })
                .and_then(|_| Ok(self.pool.reserve(&mut s.table, s.computed + take)?));
            match r {
                Ok(()) => ok.push((i, take)),
                Err(e) => ends.push((s.req, Some(format!("KV blocks: {e}")))),
            }
        }
        let inputs: Vec<SeqInput<'_>> = ok
            .iter()
            .map(|&(i, take)| {
                let s = &self.running[i];
                SeqInput {
                    tokens: &s.tokens[s.computed..s.computed + take],
                    start_pos: s.computed,
                    block_table: s.table.blocks(),
                    logits: if take == s.remaining() {
                        LogitsRequest::Last
                    } else {
                        LogitsRequest::None
                    },
                }
            })
            .collect();
        let wants: Vec<bool> = inputs
            .iter()
            .map(|x| x.logits == LogitsRequest::Last)
            .collect();
        let ids_only = self.runner.on_gpu()
            && ok
                .iter()
                .zip(&wants)
                .all(|(&(i, _), &w)| !w || self.plain_greedy(i));
        let result = if ids_only {
            self.runner.forward_argmax(&inputs).map(Picks::Ids)
        } else {
            self.runner.forward(&inputs).map(Picks::Logits)
        };
        drop(inputs);
        stats::add(&self.stats.steps, 1);
        let picks = match result {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("forward step failed: {e}");
                tracing::error!("{msg}");
                let ids: Vec<u64> = ok.iter().map(|&(i, _)| self.running[i].req).collect();
                for id in ids {
                    self.finish_request(id, Some(&msg));
                }
                return;
            }
        };
        let mut row = 0;
        let mut forks = Vec::new();
        for (&(i, take), want) in ok.iter().zip(wants) {
            let s = &mut self.running[i];
            s.computed += take;
            if s.generated == 0 {
                stats::add(&self.stats.prompt_tokens, take);
            }
            self.pool
                .offer_full_blocks(&s.table, &s.tokens, s.computed, &mut s.keys);
            if !want {
                continue;
            }
            let pick = match &picks {
                Picks::Logits(l) => Pick::Logits(l.row(row).to_vec()),
                Picks::Ids(ids) => match ids.get(row) {
                    Some(&id) => Pick::Id(id),
                    None => {
                        ends.push((self.running[i].req, Some("missing token id".into())));
                        continue;
                    }
                },
            };
            row += 1;
            self.sample_into(i, pick, &mut forks, &mut ends);
        }
        self.running.extend(forks);
        self.retire_done();
        for (id, err) in ends {
            self.finish_request(id, err.as_deref());
        }
    }

    /// Samples the next token of running sequence `i` (forking the request's other choices
    /// first when this is its prompt's end).
    fn sample_into(
        &mut self,
        i: usize,
        pick: Pick,
        forks: &mut Vec<Sequence>,
        ends: &mut Vec<(u64, Option<String>)>,
    ) {
        let id = self.running[i].req;
        let Some(r) = self.reqs.get_mut(&id) else {
            return;
        };
        let mut group = Vec::new();
        if !r.forked {
            r.forked = true;
            for c in 1..r.n {
                match self.pool.fork(&self.running[i].table) {
                    Ok(t) => {
                        group.push(self.running[i].fork(c, t));
                        r.live += 1;
                    }
                    Err(e) => tracing::warn!("request {id}: fork failed: {e}"),
                }
            }
        }
        let lp = r.logprobs;
        let tok = &self.runner.model().tokenizer;
        let cap = self.capacity;
        let mut results = Vec::new();
        match pick {
            Pick::Logits(data) => {
                let mut d = data.clone();
                results.push(self.running[i].sample(tok, &mut d, lp, cap));
                for c in group.iter_mut() {
                    let mut d = data.clone();
                    results.push(c.sample(tok, &mut d, lp, cap));
                }
            }
            Pick::Id(id) => results.push(self.running[i].accept(tok, id, None, cap)),
        }
        let mut seqs: Vec<&mut Sequence> = std::iter::once(&mut self.running[i])
            .chain(group.iter_mut())
            .collect();
        let mut failed = None;
        let mut finished = 0;
        let mut gone = false;
        for (s, res) in seqs.iter_mut().zip(results) {
            match res {
                Ok((events, done)) => {
                    r.usage.completion_tokens += 1;
                    stats::add(&self.stats.generated_tokens, 1);
                    for ev in events {
                        gone |= !r.sink.send(ev);
                    }
                    if done {
                        s.done = true;
                        finished += 1;
                    }
                }
                Err(e) => failed = Some(format!("detokenizing failed: {e}")),
            }
        }
        r.live -= finished.min(r.live);
        let all_done = r.live == 0;
        if gone {
            r.cancel.store(true, Ordering::Relaxed);
        }
        forks.extend(group.into_iter().filter(|s| !s.done));
        if failed.is_some() || all_done {
            ends.push((id, failed));
        }
    }

    /// Frees the blocks of finished sequences and drops them from the batch.
    fn retire_done(&mut self) {
        let pool = &mut self.pool;
        self.running.retain_mut(|s| {
            if s.done {
                pool.release(&mut s.table);
            }
            !s.done
        });
    }
}
