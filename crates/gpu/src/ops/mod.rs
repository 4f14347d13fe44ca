//! Op launchers: validate shapes, fill the kernel's params, record dispatches into a
//! [`StepEncoder`](crate::StepEncoder). One file per op family.

pub mod matmul;
