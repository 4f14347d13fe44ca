//! GGUF metadata values: the 13 value types, typed arrays, and their parsing.

use super::limits::{MAX_ARRAY_LEN, MAX_STRING_LEN, PREALLOC_MAX};
use super::reader::Reader;
use crate::{Error, Result};

/// The GGUF value type ids, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type for a file id, if valid.
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ]
        .into_iter()
        .find(|t| *t as u32 == id)
    }

    /// Lower-case name used in messages and summaries.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// Minimum bytes one value of this type takes in the file (strings: the length prefix).
    fn min_size(self) -> usize {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetaArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array (GGUF forbids nested arrays here, as ggml does).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetaValue {
    /// The value's type id.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::String(_) => ValueType::String,
            MetaValue::Array(_) => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }

    /// Short type description, e.g. `u32` or `array[string]`.
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::Array(a) => format!("array[{}]", a.elem_type().name()),
            v => v.value_type().name().to_string(),
        }
    }

    /// The value as a signed 128-bit integer, for any integer type.
    pub(crate) fn as_int(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }
}

impl MetaArray {
    /// Element type id.
    pub fn elem_type(&self) -> ValueType {
        match self {
            MetaArray::U8(_) => ValueType::U8,
            MetaArray::I8(_) => ValueType::I8,
            MetaArray::U16(_) => ValueType::U16,
            MetaArray::I16(_) => ValueType::I16,
            MetaArray::U32(_) => ValueType::U32,
            MetaArray::I32(_) => ValueType::I32,
            MetaArray::F32(_) => ValueType::F32,
            MetaArray::Bool(_) => ValueType::Bool,
            MetaArray::String(_) => ValueType::String,
            MetaArray::U64(_) => ValueType::U64,
            MetaArray::I64(_) => ValueType::I64,
            MetaArray::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::String(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read fixed-size little-endian numbers; `n * SIZE` was checked against the bytes left.
fn numbers<T, const SIZE: usize>(
    r: &mut Reader<'_>,
    n: usize,
    what: &dyn std::fmt::Display,
    conv: fn([u8; SIZE]) -> T,
) -> Result<Vec<T>> {
    let bytes = r.take(n.saturating_mul(SIZE), what)?;
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|c| {
            let mut a = [0u8; SIZE];
            a.copy_from_slice(c);
            conv(a)
        })
        .collect())
}

fn bool_byte(b: u8, what: &dyn std::fmt::Display) -> Result<bool> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Gguf(format!(
            "{what}: invalid bool byte {b} (must be 0 or 1)"
        ))),
    }
}

/// Read a value type id.
pub(crate) fn read_type(r: &mut Reader<'_>, what: &dyn std::fmt::Display) -> Result<ValueType> {
    let id = r.u32(what)?;
    ValueType::from_id(id).ok_or_else(|| Error::Gguf(format!("{what}: unknown value type id {id}")))
}

/// Read one value of type `t`.
pub(crate) fn read_value(
    r: &mut Reader<'_>,
    t: ValueType,
    what: &dyn std::fmt::Display,
) -> Result<MetaValue> {
    Ok(match t {
        ValueType::U8 => MetaValue::U8(r.u8(what)?),
        ValueType::I8 => MetaValue::I8(i8::from_le_bytes(r.array(what)?)),
        ValueType::U16 => MetaValue::U16(u16::from_le_bytes(r.array(what)?)),
        ValueType::I16 => MetaValue::I16(i16::from_le_bytes(r.array(what)?)),
        ValueType::U32 => MetaValue::U32(r.u32(what)?),
        ValueType::I32 => MetaValue::I32(i32::from_le_bytes(r.array(what)?)),
        ValueType::F32 => MetaValue::F32(f32::from_le_bytes(r.array(what)?)),
        ValueType::Bool => MetaValue::Bool(bool_byte(r.u8(what)?, what)?),
        ValueType::String => MetaValue::String(r.string(MAX_STRING_LEN, what)?),
        ValueType::Array => MetaValue::Array(read_array(r, what)?),
        ValueType::U64 => MetaValue::U64(r.u64(what)?),
        ValueType::I64 => MetaValue::I64(i64::from_le_bytes(r.array(what)?)),
        ValueType::F64 => MetaValue::F64(f64::from_le_bytes(r.array(what)?)),
    })
}

fn read_array(r: &mut Reader<'_>, what: &dyn std::fmt::Display) -> Result<MetaArray> {
    let t = read_type(r, what)?;
    if t == ValueType::Array {
        return Err(Error::Gguf(format!(
            "{what}: nested arrays are not supported"
        )));
    }
    let n = r.count(MAX_ARRAY_LEN, t.min_size(), what)?;
    Ok(match t {
        ValueType::U8 => MetaArray::U8(r.take(n, what)?.to_vec()),
        ValueType::I8 => MetaArray::I8(numbers(r, n, what, i8::from_le_bytes)?),
        ValueType::U16 => MetaArray::U16(numbers(r, n, what, u16::from_le_bytes)?),
        ValueType::I16 => MetaArray::I16(numbers(r, n, what, i16::from_le_bytes)?),
        ValueType::U32 => MetaArray::U32(numbers(r, n, what, u32::from_le_bytes)?),
        ValueType::I32 => MetaArray::I32(numbers(r, n, what, i32::from_le_bytes)?),
        ValueType::F32 => MetaArray::F32(numbers(r, n, what, f32::from_le_bytes)?),
        ValueType::U64 => MetaArray::U64(numbers(r, n, what, u64::from_le_bytes)?),
        ValueType::I64 => MetaArray::I64(numbers(r, n, what, i64::from_le_bytes)?),
        ValueType::F64 => MetaArray::F64(numbers(r, n, what, f64::from_le_bytes)?),
        ValueType::Bool => {
            let bytes = r.take(n, what)?;
            let v = bytes
                .iter()
                .map(|&b| bool_byte(b, what))
                .collect::<Result<_>>()?;
            MetaArray::Bool(v)
        }
        ValueType::String => {
            // A String is 24 bytes but may take only 8 in the file: grow as parsed.
            let mut v = Vec::with_capacity(n.min(PREALLOC_MAX));
            for i in 0..n {
                v.push(r.string(MAX_STRING_LEN, &format_args!("{what}[{i}]"))?);
            }
            MetaArray::String(v)
        }
        ValueType::Array => unreachable_array()?,
    })
}

// Kept out of line so the match above stays exhaustive without a panic.
fn unreachable_array() -> Result<MetaArray> {
    Err(Error::Gguf("nested arrays are not supported".into()))
}
