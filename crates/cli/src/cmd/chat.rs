//! `metal-marlin chat`: an interactive conversation that keeps its history.

use std::io::{BufRead, Write};

use anyhow::Result;
use marlin_models::chat::ChatMessage;

use crate::args::ChatArgs;
use crate::common::{encode_prompt, load_model, sampling_params};

pub fn run(args: ChatArgs) -> Result<()> {
    let (model, device) = load_model(&args.model)?;
    let params = sampling_params(&args.sampling)?;
    let ctx = model.config.context_length.min(8192);
    let mut engine = device.engine(model.clone(), ctx)?;
    let start: Vec<ChatMessage> = args
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s))
        .collect();
    let mut history = start.clone();
    eprintln!(
        "chatting with {} — /reset clears the history, /exit quits",
        model.name
    );
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        write!(stdout, "> ")?;
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history = start.clone();
                eprintln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage::new("user", line));
        let prompt = encode_prompt(&model, &history, false)?;
        if prompt.len() + params.max_tokens > engine.capacity() {
            eprintln!("(the conversation is too long for the context; /reset to start over)");
            history.pop();
            continue;
        }
        let out = engine.generate(&prompt, &params, &mut |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        })?;
        writeln!(stdout)?;
        history.push(ChatMessage::new("assistant", out.text.trim()));
    }
    Ok(())
}
