//! Caps on every size a GGUF header can claim (see reliability.md F2, F3, F7).

/// The file magic, "GGUF".
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment used when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest accepted `general.alignment` (1 MiB; larger only inflates padding).
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Longest metadata key, in bytes (the spec's 65535).
pub const MAX_KEY_LEN: u64 = 65_535;
/// Longest string value, in bytes.
pub const MAX_STRING_LEN: u64 = 16 << 20;
/// Most elements in one metadata array.
pub const MAX_ARRAY_LEN: u64 = 16 << 20;
/// Longest tensor name in bytes (ggml's GGML_MAX_NAME = 64 counts the NUL).
pub const MAX_NAME_LEN: usize = 63;
/// Most dimensions of a tensor (GGML_MAX_DIMS).
pub const MAX_DIMS: u32 = 4;
/// Most bytes the metadata and tensor infos together may span.
pub const MAX_HEADER_BYTES: usize = 128 << 20;
/// Smallest possible key/value entry: key length, 1 key byte, type id, 1 value byte.
pub(crate) const MIN_KV_BYTES: usize = 8 + 1 + 4 + 1;
/// Smallest possible tensor info: name length, 1 name byte, n_dims, 1 dim, type, offset.
pub(crate) const MIN_TENSOR_INFO_BYTES: usize = 8 + 1 + 4 + 8 + 4 + 8;
/// Most entries reserved up front for a claimed count whose items are larger in memory
/// than on disk (tensor infos, string arrays); beyond this, vectors grow as items parse.
pub(crate) const PREALLOC_MAX: usize = 4096;
