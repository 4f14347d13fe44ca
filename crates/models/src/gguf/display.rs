//! Printable, abbreviated renderings of metadata values (for `inspect`).

use super::value::{MetaArray, MetaValue};

/// Longest string shown before it is cut.
const MAX_STR_CHARS: usize = 80;
/// Array elements shown before "…".
const MAX_ITEMS: usize = 6;

fn short_str(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(MAX_STR_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}… ({} bytes)", s.len())
    } else {
        format!("{head:?}")
    }
}

fn list<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = v.iter().take(MAX_ITEMS).map(f).collect();
    if v.len() > MAX_ITEMS {
        parts.push("…".into());
    }
    format!("[{}]", parts.join(", "))
}

impl MetaArray {
    /// `[a, b, c, …]`, at most a few elements, long strings cut.
    pub fn abbreviated(&self) -> String {
        let body = match self {
            MetaArray::U8(v) => list(v, |x| x.to_string()),
            MetaArray::I8(v) => list(v, |x| x.to_string()),
            MetaArray::U16(v) => list(v, |x| x.to_string()),
            MetaArray::I16(v) => list(v, |x| x.to_string()),
            MetaArray::U32(v) => list(v, |x| x.to_string()),
            MetaArray::I32(v) => list(v, |x| x.to_string()),
            MetaArray::F32(v) => list(v, |x| x.to_string()),
            MetaArray::Bool(v) => list(v, |x| x.to_string()),
            MetaArray::String(v) => list(v, |x| short_str(x)),
            MetaArray::U64(v) => list(v, |x| x.to_string()),
            MetaArray::I64(v) => list(v, |x| x.to_string()),
            MetaArray::F64(v) => list(v, |x| x.to_string()),
        };
        format!("{} × {}: {body}", self.len(), self.elem_type().name())
    }
}

impl MetaValue {
    /// A one-line rendering: numbers as is, strings quoted and cut, arrays abbreviated.
    pub fn abbreviated(&self) -> String {
        match self {
            MetaValue::U8(v) => v.to_string(),
            MetaValue::I8(v) => v.to_string(),
            MetaValue::U16(v) => v.to_string(),
            MetaValue::I16(v) => v.to_string(),
            MetaValue::U32(v) => v.to_string(),
            MetaValue::I32(v) => v.to_string(),
            MetaValue::F32(v) => v.to_string(),
            MetaValue::Bool(v) => v.to_string(),
            MetaValue::String(s) => short_str(s),
            MetaValue::Array(a) => a.abbreviated(),
            MetaValue::U64(v) => v.to_string(),
            MetaValue::I64(v) => v.to_string(),
            MetaValue::F64(v) => v.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        let v = MetaValue::Array(MetaArray::U32((0..100).collect()));
        assert_eq!(v.abbreviated(), "100 × u32: [0, 1, 2, 3, 4, 5, …]");
        let s = "é".repeat(100);
        let out = MetaValue::String(s).abbreviated();
        assert!(out.ends_with("… (200 bytes)"), "{out}");
        assert_eq!(MetaValue::String("a\nb".into()).abbreviated(), "\"a\\nb\"");
    }
}
