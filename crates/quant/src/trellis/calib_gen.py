# Generate fixtures/text/smollm2-generated.txt: calibration text sampled from SmolLM2-135M-Instruct
# itself (the f16 base of scripts/quality-table.sh), so the Hessians see the model's own
# distribution of prose, not legal text. Sampling at temperature 1 from the top 50 tokens, each
# sequence started from the BOS token alone, fixed seed; never sees fixtures/text/english.txt.
# Usage: /opt/refenv/bin/python calib_gen.py BASE_DIR OUT.txt [batches=3] [batch=32] [tokens=512]
import os, sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
base, out = sys.argv[1], sys.argv[2]
batches, batch, new = (int(x) for x in (sys.argv[3:] + ['3', '32', '512'][len(sys.argv) - 3:]))
torch.set_num_threads(int(os.environ.get('THREADS', '2')))
torch.manual_seed(20261127)
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
texts = []
for b in range(batches):
    t = time.time()
    ids = torch.full((batch, 1), tok.bos_token_id)
    with torch.no_grad():
        o = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                           top_p=1.0, top_k=50, max_new_tokens=new, min_new_tokens=new,
                           pad_token_id=tok.eos_token_id)
    texts += [tok.decode(s[1:], skip_special_tokens=True).strip() for s in o]
    print(f'batch {b}: {time.time() - t:.0f} s', file=sys.stderr, flush=True)
head = (f'SmolLM2-135M-Instruct samples ({batches * batch} x {new} tokens, temperature 1, top-k 50, seed '
        f'20261127, from BOS; crates/quant/src/trellis/calib_gen.py).')
with open(out, 'w') as f:
    f.write(head + '\n\n' + '\n\n'.join(t.replace('\r', '') for t in texts) + '\n')
