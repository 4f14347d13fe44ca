//! `EngineHandle`: the serving engine on its own thread. Requests reach it over a channel;
//! events come back through each request's sink. A step that panics fails the requests in
//! flight, never the thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use marlin_models::{Device, Model};

use crate::runner::Runner;
use crate::serve::request::{EngineConfig, Event, EventSink, GenRequest};
use crate::serve::scheduler::Scheduler;
use crate::serve::score;
use crate::serve::stats::{self, Stats, StatsSnapshot};
use crate::{Error, Result};

/// Replies to a scoring request: each position's log-probability of the next token.
pub type ScoreReply = Box<dyn FnOnce(Result<Vec<f32>>) + Send>;

enum Command {
    Submit {
        req: GenRequest,
        sink: Box<dyn EventSink>,
        cancel: Arc<AtomicBool>,
    },
    Score {
        tokens: Vec<u32>,
        reply: ScoreReply,
    },
    Wake,
}

struct Shared {
    stats: Arc<Stats>,
    draining: AtomicBool,
    max_requests: usize,
    capacity: usize,
    model: Arc<Model>,
    tx: Mutex<Option<Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A cheap, clonable handle on the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

/// Held while a request runs; dropping it (client gone) cancels the request, and the
/// engine frees its KV blocks at the start of its next step.
pub struct RequestGuard {
    cancel: Arc<AtomicBool>,
    tx: Option<Sender<Command>>,
}

impl RequestGuard {
    /// Cancels the request now.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Wake);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl EngineHandle {
    /// Starts the engine thread for `model` on `device` with `cfg`'s limits.
    pub fn start(model: Arc<Model>, device: Device, cfg: EngineConfig) -> Result<Self> {
        let runner = Runner::with_kv_dtype(
            model.clone(),
            device,
            cfg.num_blocks,
            cfg.batch_invariant,
            cfg.kv_dtype,
        )?;
        let stats = Arc::new(Stats::default());
        let sched = Scheduler::new(runner, cfg, stats.clone());
        let capacity = sched.capacity();
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("marlin-engine".into())
            .spawn(move || engine_loop(sched, rx))
            .map_err(|e| Error::InvalidRequest(format!("starting the engine thread: {e}")))?;
        Ok(Self {
            shared: Arc::new(Shared {
                stats,
                draining: AtomicBool::new(false),
                max_requests: cfg.max_requests.max(1),
                capacity,
                model,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The model served.
    pub fn model(&self) -> &Arc<Model> {
        &self.shared.model
    }

    /// Most tokens (prompt plus completion) one sequence can hold.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Live counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// True once [`EngineHandle::shutdown`] was called.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    fn sender(&self) -> Option<Sender<Command>> {
        self.shared.tx.lock().ok().and_then(|g| g.clone())
    }

    /// Queues `req`. Fails with [`Error::ShuttingDown`] while draining and
    /// [`Error::Overloaded`] when `max_requests` are already in flight.
    pub fn submit(&self, req: GenRequest, sink: Box<dyn EventSink>) -> Result<RequestGuard> {
        if self.is_draining() {
            return Err(Error::ShuttingDown);
        }
        let st = &self.shared.stats;
        let prev = st.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        if prev as usize >= self.shared.max_requests {
            stats::sub(&st.requests_in_flight, 1);
            return Err(Error::Overloaded);
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let cmd = Command::Submit {
            req,
            sink,
            cancel: cancel.clone(),
        };
        let tx = self.sender();
        if tx.as_ref().is_none_or(|t| t.send(cmd).is_err()) {
            stats::sub(&st.requests_in_flight, 1);
            return Err(Error::ShuttingDown);
        }
        Ok(RequestGuard { cancel, tx })
    }

    /// Scores `tokens` on the engine thread (between steps); `reply` gets each position's
    /// log-probability of the token after it.
    pub fn score(&self, tokens: Vec<u32>, reply: ScoreReply) -> Result<()> {
        if self.is_draining() {
            return Err(Error::ShuttingDown);
        }
        let tx = self.sender().ok_or(Error::ShuttingDown)?;
        tx.send(Command::Score { tokens, reply })
            .map_err(|_| Error::ShuttingDown)
    }

    /// Stops taking requests; the thread finishes those in flight, then exits.
    pub fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
        if let Ok(mut g) = self.shared.tx.lock() {
            g.take();
        }
    }

    /// Shuts down and waits for the thread to finish what is in flight.
    pub fn join(&self) {
        self.shutdown();
        let t = self.shared.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

fn engine_loop(mut sched: Scheduler, rx: Receiver<Command>) {
    let mut open = true;
    loop {
        if sched.is_idle() {
            if !open {
                return;
            }
            match rx.recv() {
                Ok(cmd) => handle(&mut sched, cmd),
                Err(_) => return,
            }
        }
        while open {
            match rx.try_recv() {
                Ok(cmd) => handle(&mut sched, cmd),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => open = false,
            }
        }
        if sched.is_idle() {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| sched.step())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => sched.fail_all(&format!("engine step failed: {e}")),
            Err(_) => {
                tracing::error!("engine step panicked; failing the requests in flight");
                sched.fail_all("internal error in the engine step");
            }
        }
    }
}

fn handle(sched: &mut Scheduler, cmd: Command) {
    match cmd {
        Command::Submit {
            req,
            mut sink,
            cancel,
        } => match sched.validate(&req) {
            Ok(()) => sched.add(req, sink, cancel),
            Err(e) => {
                sink.send(Event::Error(e.to_string()));
                sched.release_slot();
            }
        },
        Command::Score { tokens, reply } => {
            let r = catch_unwind(AssertUnwindSafe(|| score::score(sched, &tokens)))
                .unwrap_or_else(|_| Err(Error::InvalidRequest("scoring panicked".into())));
            reply(r);
        }
        Command::Wake => {}
    }
}
