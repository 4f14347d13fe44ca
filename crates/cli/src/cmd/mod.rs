//! One module per command.

pub mod bench;
pub mod bench_kernels;
pub mod bench_serve;
pub mod chat;
pub mod convert;
pub mod devices;
pub mod eval;
pub mod inspect;
pub mod quantize;
pub mod run;
pub mod serve;
