//! One module per command.

pub mod bench;
pub mod chat;
pub mod eval;
pub mod inspect;
pub mod run;
