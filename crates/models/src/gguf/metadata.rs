//! The key/value metadata of a GGUF file and its typed getters.
//!
//! `get_*` fail when the key is missing or has the wrong type; `opt_*` return `Ok(None)` for
//! a missing key but still fail on a wrong type, so a corrupt value is never silently ignored.
//! Integer getters accept every integer type (llama.cpp writes most counts as u32).

use std::collections::HashMap;

use super::value::{MetaArray, MetaValue};
use crate::{Error, Result};

/// Metadata entries in file order, with a key index.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
    index: HashMap<String, usize>,
}

fn wrong(key: &str, want: &str, got: &MetaValue) -> Error {
    Error::Gguf(format!(
        "key `{key}`: expected {want}, found {}",
        got.type_name()
    ))
}

impl Metadata {
    /// Add an entry; fails on an empty or duplicate key.
    pub fn insert(&mut self, key: String, value: MetaValue) -> Result<()> {
        if key.is_empty() {
            return Err(Error::Gguf("empty metadata key".into()));
        }
        if self.index.contains_key(&key) {
            return Err(Error::Gguf(format!("duplicate metadata key `{key}`")));
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Entries in file order.
    pub fn entries(&self) -> &[(String, MetaValue)] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    fn req(&self, key: &str) -> Result<&MetaValue> {
        self.get(key)
            .ok_or_else(|| Error::MissingKey(key.to_string()))
    }

    fn opt<'a, T>(
        &'a self,
        key: &str,
        f: impl FnOnce(&'a Self, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.index.contains_key(key) {
            f(self, key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Any non-negative integer value as u64.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.req(key)?;
        let i = v.as_int().ok_or_else(|| wrong(key, "an integer", v))?;
        u64::try_from(i).map_err(|_| Error::Gguf(format!("key `{key}`: {i} is negative")))
    }

    /// Any integer value that fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let n = self.get_u64(key)?;
        u32::try_from(n).map_err(|_| Error::Gguf(format!("key `{key}`: {n} does not fit in u32")))
    }

    /// Any integer value as i64.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        let v = self.req(key)?;
        let i = v.as_int().ok_or_else(|| wrong(key, "an integer", v))?;
        i64::try_from(i).map_err(|_| Error::Gguf(format!("key `{key}`: {i} does not fit in i64")))
    }

    /// A float (f32 or f64, narrowed) or an integer, as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.req(key)?;
        match *v {
            MetaValue::F32(x) => Ok(x),
            MetaValue::F64(x) => Ok(x as f32),
            _ => v
                .as_int()
                .map(|i| i as f32)
                .ok_or_else(|| wrong(key, "a number", v)),
        }
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.req(key)? {
            MetaValue::String(s) => Ok(s),
            v => Err(wrong(key, "a string", v)),
        }
    }

    /// A bool value.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.req(key)? {
            MetaValue::Bool(b) => Ok(*b),
            v => Err(wrong(key, "a bool", v)),
        }
    }

    /// An array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&MetaArray> {
        match self.req(key)? {
            MetaValue::Array(a) => Ok(a),
            v => Err(wrong(key, "an array", v)),
        }
    }

    /// A string array.
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            MetaArray::String(v) => Ok(v),
            a => Err(wrong_array(key, "string", a)),
        }
    }

    /// An f32 array (element type checked: no reinterpretation of other types).
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get_array(key)? {
            MetaArray::F32(v) => Ok(v),
            a => Err(wrong_array(key, "f32", a)),
        }
    }

    /// An i32 array.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.get_array(key)? {
            MetaArray::I32(v) => Ok(v),
            a => Err(wrong_array(key, "i32", a)),
        }
    }

    /// An array of any integer type, as non-negative u64s.
    pub fn get_u64_array(&self, key: &str) -> Result<Vec<u64>> {
        fn conv<T: Copy + TryInto<u64> + std::fmt::Display>(
            key: &str,
            v: &[T],
        ) -> Result<Vec<u64>> {
            v.iter()
                .map(|&x| {
                    x.try_into()
                        .map_err(|_| Error::Gguf(format!("key `{key}`: element {x} is negative")))
                })
                .collect()
        }
        match self.get_array(key)? {
            MetaArray::U8(v) => conv(key, v),
            MetaArray::I8(v) => conv(key, v),
            MetaArray::U16(v) => conv(key, v),
            MetaArray::I16(v) => conv(key, v),
            MetaArray::U32(v) => conv(key, v),
            MetaArray::I32(v) => conv(key, v),
            MetaArray::U64(v) => conv(key, v),
            MetaArray::I64(v) => conv(key, v),
            a => Err(wrong_array(key, "integer", a)),
        }
    }

    /// Like [`Metadata::get_u64`], `None` when absent.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.opt(key, Self::get_u64)
    }

    /// Like [`Metadata::get_u32`], `None` when absent.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.opt(key, Self::get_u32)
    }

    /// Like [`Metadata::get_f32`], `None` when absent.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.opt(key, Self::get_f32)
    }

    /// Like [`Metadata::get_str`], `None` when absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.opt(key, Self::get_str)
    }

    /// Like [`Metadata::get_bool`], `None` when absent.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.opt(key, Self::get_bool)
    }

    /// Like [`Metadata::get_str_array`], `None` when absent.
    pub fn opt_str_array(&self, key: &str) -> Result<Option<&[String]>> {
        self.opt(key, Self::get_str_array)
    }

    /// Like [`Metadata::get_f32_array`], `None` when absent.
    pub fn opt_f32_array(&self, key: &str) -> Result<Option<&[f32]>> {
        self.opt(key, Self::get_f32_array)
    }

    /// Like [`Metadata::get_i32_array`], `None` when absent.
    pub fn opt_i32_array(&self, key: &str) -> Result<Option<&[i32]>> {
        self.opt(key, Self::get_i32_array)
    }
}

fn wrong_array(key: &str, want: &str, got: &MetaArray) -> Error {
    Error::Gguf(format!(
        "key `{key}`: expected array[{want}], found array[{}]",
        got.elem_type().name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md() -> Metadata {
        let mut m = Metadata::default();
        m.insert("a.u32".into(), MetaValue::U32(7)).unwrap();
        m.insert("a.i32neg".into(), MetaValue::I32(-3)).unwrap();
        m.insert("a.u8".into(), MetaValue::U8(200)).unwrap();
        m.insert("a.big".into(), MetaValue::U64(1 << 40)).unwrap();
        m.insert("a.f".into(), MetaValue::F64(0.5)).unwrap();
        m.insert("a.s".into(), MetaValue::String("x".into()))
            .unwrap();
        m.insert("a.arr".into(), MetaValue::Array(MetaArray::U8(vec![1, 2])))
            .unwrap();
        m
    }

    #[test]
    fn integer_getters_accept_any_integer_type() {
        let m = md();
        assert_eq!(m.get_u64("a.u32").unwrap(), 7);
        assert_eq!(m.get_u32("a.u8").unwrap(), 200);
        assert_eq!(m.get_i64("a.i32neg").unwrap(), -3);
        assert!(m
            .get_u64("a.i32neg")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(m
            .get_u32("a.big")
            .unwrap_err()
            .to_string()
            .contains("does not fit in u32"));
        assert_eq!(m.get_f32("a.f").unwrap(), 0.5);
        assert_eq!(m.get_f32("a.u32").unwrap(), 7.0);
        assert_eq!(m.get_u64_array("a.arr").unwrap(), vec![1, 2]);
    }

    #[test]
    fn missing_and_wrong_types() {
        let m = md();
        assert!(matches!(m.get_u32("nope"), Err(Error::MissingKey(k)) if k == "nope"));
        assert_eq!(m.opt_u32("nope").unwrap(), None);
        assert_eq!(m.opt_str("a.s").unwrap(), Some("x"));
        let e = m.opt_u32("a.s").unwrap_err().to_string();
        assert!(
            e.contains("key `a.s`: expected an integer, found string"),
            "{e}"
        );
        let e = m.get_f32_array("a.arr").unwrap_err().to_string();
        assert!(e.contains("expected array[f32], found array[u8]"), "{e}");
        let mut m = m;
        assert!(m.insert("a.s".into(), MetaValue::Bool(true)).is_err());
        assert!(m.insert(String::new(), MetaValue::Bool(true)).is_err());
    }
}
