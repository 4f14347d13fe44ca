//! Typed, range-checked reads of request fields from a JSON object. Every failure is a 400
//! naming the field; nothing is coerced (a float is not an integer, a string not a number).
//! `null` reads as absent.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request body's top-level object.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

type R<T> = std::result::Result<T, ApiError>;

impl<'a> Fields<'a> {
    /// The fields of `body`, which must be a JSON object.
    pub fn new(body: &'a Value) -> R<Self> {
        match body {
            Value::Object(obj) => Ok(Self { obj }),
            _ => Err(ApiError::bad_request(
                "the request body must be a JSON object",
            )),
        }
    }

    /// The raw value of `name` (`None` when absent or null).
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// An optional string.
    pub fn str(&self, name: &str) -> R<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(
                name,
                format!("`{name}` must be a string"),
            )),
        }
    }

    /// An optional boolean.
    pub fn bool(&self, name: &str) -> R<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(
                name,
                format!("`{name}` must be a boolean"),
            )),
        }
    }

    /// An optional finite number in `[lo, hi]`.
    pub fn number(&self, name: &str, lo: f64, hi: f64) -> R<Option<f64>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let x = v
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be a number")))?;
        if !(lo..=hi).contains(&x) {
            return Err(ApiError::invalid(
                name,
                format!("`{name}` must be between {lo} and {hi}, got {x}"),
            ));
        }
        Ok(Some(x))
    }

    /// An optional integer in `[lo, hi]` (a number with a fraction is refused).
    pub fn int(&self, name: &str, lo: i64, hi: i64) -> R<Option<i64>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let x = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                // u64 beyond i64 is out of every range we take.
                n.as_u64().map(|_| i64::MAX)
            }),
            _ => None,
        }
        .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be an integer")))?;
        if !(lo..=hi).contains(&x) {
            return Err(ApiError::invalid(
                name,
                format!("`{name}` must be between {lo} and {hi}, got {x}"),
            ));
        }
        Ok(Some(x))
    }

    /// `stop`: a string or an array of at most `max` strings, each non-empty and at most
    /// `max_len` bytes.
    pub fn stop(&self, max: usize, max_len: usize) -> R<Vec<String>> {
        let list: Vec<&Value> = match self.get("stop") {
            None => return Ok(Vec::new()),
            Some(v @ Value::String(_)) => vec![v],
            Some(Value::Array(a)) => a.iter().collect(),
            Some(_) => {
                return Err(ApiError::invalid(
                    "stop",
                    "`stop` must be a string or an array of strings",
                ))
            }
        };
        if list.len() > max {
            return Err(ApiError::invalid(
                "stop",
                format!("`stop` takes at most {max} sequences, got {}", list.len()),
            ));
        }
        list.into_iter()
            .map(|v| match v {
                Value::String(s) if s.is_empty() => Err(ApiError::invalid(
                    "stop",
                    "stop sequences must not be empty",
                )),
                Value::String(s) if s.len() > max_len => Err(ApiError::invalid(
                    "stop",
                    format!("stop sequences must be at most {max_len} bytes"),
                )),
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::invalid("stop", "stop sequences must be strings")),
            })
            .collect()
    }
}
