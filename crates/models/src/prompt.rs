//! Turning a conversation or raw text into prompt tokens the way the model expects.

use crate::chat::ChatMessage;
use crate::model::Model;
use crate::Result;

impl Model {
    /// Render `messages` with the model's chat template, opening the assistant's turn.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        let tok = &self.tokenizer;
        let name = |id: Option<u32>| id.and_then(|i| tok.token_str(i)).unwrap_or_default();
        let bos = name(tok.bos_id());
        let eos = name(tok.eos_ids().first().copied());
        self.chat_template.render(messages, true, &bos, &eos)
    }

    /// Tokenize prompt text: special tokens written in it are recognised, and BOS is added
    /// when the model wants it and the text does not already start with it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }
}
