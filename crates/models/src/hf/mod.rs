//! Hugging Face model folders: `config.json` plus `model.safetensors` or its shards.
