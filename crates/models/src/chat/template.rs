//! `ChatTemplate`: one compiled Jinja chat template and its rendering.

use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use super::{functions, CHATML_TEMPLATE, GEMMA_TEMPLATE};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

const NAME: &str = "chat";

fn template_err(e: minijinja::Error) -> Error {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail() {
        if !msg.contains(detail) {
            msg = format!("{msg}: {detail}");
        }
    }
    Error::Template(msg)
}

impl ChatTemplate {
    /// Compile `source`; a syntax error is an [`Error::Template`].
    pub fn new(source: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        functions::register(&mut env);
        env.add_template_owned(NAME, source.to_string())
            .map_err(template_err)?;
        Ok(Self { env })
    }

    /// The built-in ChatML template.
    pub fn chatml() -> Result<Self> {
        Self::new(CHATML_TEMPLATE)
    }

    /// The built-in template for a model family without one, by GGUF architecture name
    /// (`general.architecture`): Gemma's turn format for `gemma*`, ChatML otherwise.
    pub fn fallback_for(arch: &str) -> Result<Self> {
        if arch.starts_with("gemma") {
            Self::new(GEMMA_TEMPLATE)
        } else {
            Self::chatml()
        }
    }

    /// The template a tokenizer ships, else a fallback suited to its vocabulary: Gemma's
    /// turn format when it has `<start_of_turn>`, ChatML otherwise.
    pub fn for_tokenizer(tok: &Tokenizer) -> Result<Self> {
        match tok.chat_template() {
            Some(src) => Self::new(src),
            None if tok.token_id("<start_of_turn>").is_some() => Self::new(GEMMA_TEMPLATE),
            None => Self::chatml(),
        }
    }

    /// Render `messages`; `add_generation_prompt` opens the assistant's turn.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<String> {
        self.render_context(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        })
    }

    /// Render with an arbitrary context (tools, documents, extra template variables).
    pub fn render_context(&self, ctx: Value) -> Result<String> {
        let tmpl = self.env.get_template(NAME).map_err(template_err)?;
        tmpl.render(ctx).map_err(template_err)
    }
}
