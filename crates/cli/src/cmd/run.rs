//! `metal-marlin run`: answer one prompt.

use std::io::Write;

use anyhow::Result;
use marlin_models::chat::ChatMessage;

use crate::args::RunArgs;
use crate::common::{encode_prompt, load_model, sampling_params};

pub fn run(args: RunArgs) -> Result<()> {
    let (model, device) = load_model(&args.model)?;
    let params = sampling_params(&args.sampling)?;
    let messages = [ChatMessage::new("user", &args.prompt)];
    let prompt = encode_prompt(&model, &messages, args.raw)?;
    let mut engine = device.engine(model, prompt.len() + params.max_tokens)?;
    let stdout = std::io::stdout();
    let out = if args.json {
        engine.generate(&prompt, &params, &mut |_| {})?
    } else {
        let mut lock = stdout.lock();
        let out = engine.generate(&prompt, &params, &mut |piece| {
            let _ = lock.write_all(piece.as_bytes());
            let _ = lock.flush();
        })?;
        writeln!(lock)?;
        out
    };
    if args.json {
        let json = serde_json::json!({
            "text": out.text,
            "token_ids": out.token_ids,
            "prompt_tokens": out.prompt_tokens,
            "completion_tokens": out.completion_tokens,
            "finish_reason": out.finish_reason.as_str(),
            "prefill_tok_s": out.prefill_tok_s(),
            "decode_tok_s": out.decode_tok_s(),
            "device": device.name(),
        });
        println!("{json}");
    }
    Ok(())
}
