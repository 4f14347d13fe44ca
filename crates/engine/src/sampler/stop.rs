//! `StopChecker`: stop strings over streamed text.
//!
//! Text that could be the start of a stop string is held back until the next piece settles
//! it, so a stop string split across pieces is never emitted; at a stop the text is cut
//! before it.

/// Watches streamed text for stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopChecker {
    stops: Vec<String>,
    held: String,
    matched: Option<usize>,
}

impl StopChecker {
    /// A checker for `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Self::default()
        }
    }

    /// Feed the next piece of text. Returns the text safe to emit and whether a stop string
    /// was reached (after which everything is swallowed).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.matched.is_some() {
            return (String::new(), true);
        }
        if self.stops.is_empty() {
            return (piece.to_string(), false);
        }
        self.held.push_str(piece);
        let first = self
            .stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|at| (at, i)))
            .min();
        if let Some((at, i)) = first {
            self.matched = Some(i);
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, true);
        }
        let keep = self
            .stops
            .iter()
            .map(|s| partial_suffix(&self.held, s))
            .max()
            .unwrap_or(0);
        let out = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        (out, false)
    }

    /// The held-back text, at the end of generation without a stop.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The stop string that ended generation, if any.
    pub fn matched(&self) -> Option<&str> {
        self.matched.map(|i| self.stops[i].as_str())
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`.
fn partial_suffix(text: &str, stop: &str) -> usize {
    stop.char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .filter(|&k| text.ends_with(&stop[..k]))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_suffixes() {
        assert_eq!(partial_suffix("abc<|im", "<|im_end|>"), 4);
        assert_eq!(partial_suffix("abc", "<|im_end|>"), 0);
        assert_eq!(partial_suffix("xé", "éclair"), 'é'.len_utf8());
        assert_eq!(partial_suffix("stop", "stop"), 0);
    }
}
